import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDACTED, redactJsonLine, redactString } from '../../core/redact.js';

test('secrets in URLs and strings are redacted; the rest stays', () => {
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

});

test('a JSON log line as written: secret fields and secrets in any string are redacted', () => {
  const line = JSON.stringify({
    req: { method: 'GET', url: '/x?access_token=t0p&page=1', headers: { authorization: 'Bearer s3cret', 'user-agent': 'curl "1"' } },
    body: { password: 'hun"ter22', currentPassword: 'c', token: 'tk' },
    msg: 'key berth_AAAAAAAAAAAAAAAAAAAAAAAA',
  });
  const out = redactJsonLine(line);
  for (const secret of ['t0p', 's3cret', 'hun', '"c"', '"tk"', 'AAAAAAAAAAAAAAAA']) assert.ok(!out.includes(secret), `${secret} in ${out}`);
  const parsed = JSON.parse(out) as { req: { url: string; headers: Record<string, string> } };
  assert.equal(parsed.req.url, `/x?access_token=${REDACTED}&page=1`);
  assert.equal(parsed.req.headers['user-agent'], 'curl "1"');
});
