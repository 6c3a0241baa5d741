import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDACTED, redactLogObject, redactString } from '../../core/redact.js';

test('secrets in URLs, headers and fields are redacted; the rest of a log line stays', () => {
  const presigned =
    'http://127.0.0.1:9000/berth-dcu/u/a.tar.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=berth%2F20261202%2Fus-east-1&X-Amz-Date=20261202T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=0123abcd';
  const out = redactString(presigned);
  assert.ok(!out.includes('0123abcd') && !out.includes('berth%2F20261202'), out);
  assert.ok(out.includes('X-Amz-Expires=900') && out.startsWith('http://127.0.0.1:9000/berth-dcu/u/a.tar.gz?'), 'the rest stays');
  assert.equal(redactString('/api/v1/containers/x/stats?ticket=abc123&x=1'), `/api/v1/containers/x/stats?ticket=${REDACTED}&x=1`);
  assert.equal(redactString('/a?access_token=tok.en-1'), `/a?access_token=${REDACTED}`);
  assert.equal(redactString('sent Bearer abc.def-ghi to it'), `sent Bearer ${REDACTED} to it`);
  assert.equal(redactString('key berth_AAAAAAAAAAAAAAAAAAAAAAAA used'), `key berth_${REDACTED} used`);
  assert.equal(redactString('/api/v1/images?page=2'), '/api/v1/images?page=2');

  const line = redactLogObject({
    req: { method: 'GET', url: '/x?ticket=t0p', headers: { authorization: 'Bearer s3cret', cookie: 'sid=1', 'user-agent': 'curl' } },
    body: { username: 'ann', password: 'hunter22', nested: [{ newPassword: 'p', token: 't' }] },
    err: { message: 'failed with Authorization: Bearer zzz' },
    count: 3,
  });
  const text = JSON.stringify(line);
  for (const secret of ['t0p', 's3cret', 'sid=1', 'hunter22', '"p"', '"t"', 'zzz']) assert.ok(!text.includes(secret), `${secret} in ${text}`);
  assert.ok(text.includes('"user-agent":"curl"') && text.includes('"username":"ann"') && text.includes('"count":3'));
});
