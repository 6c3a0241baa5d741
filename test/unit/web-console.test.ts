/**
 * The console's pure pieces (web/src/lib): what people type (money, a container's environment)
 * and the URL patterns of its pages. And the console's API types (web/src/api/schema.d.ts) are
 * what the API's OpenAPI document gives today: an API change makes this fail until
 * `npm run web:api-types` is run, and then `tsc -p web/tsconfig.json` fails wherever the
 * console does not follow it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseMoney, idempotencyKey } from '../../web/src/lib/money.js';
import { parseEnv } from '../../web/src/lib/env.js';
import { match } from '../../web/src/lib/paths.js';
import { openapiTypes } from '../../scripts/openapi-document.js';

test('money typed by people becomes integer minor units; anything else is refused', () => {
  assert.equal(parseMoney('12'), 1200);
  assert.equal(parseMoney('12.5'), 1250);
  assert.equal(parseMoney('12.05'), 1205);
  assert.equal(parseMoney(' 0,99 '), 99);
  assert.equal(parseMoney('0'), 0);
  for (const bad of ['', '-1', '1.234', 'abc', '1e3', '1.', '.5', '12 00']) assert.equal(parseMoney(bad), null, bad);
});

test('an idempotency key is new each time and carries no structure beyond its prefix', () => {
  const a = idempotencyKey();
  assert.match(a, /^console-[0-9a-f]{32}$/);
  assert.notEqual(a, idempotencyKey());
});

test('environment lines: NAME=value (the value keeps "=" and spaces), blank lines skipped, the first bad line named', () => {
  assert.deepEqual(parseEnv('A=1\n\nB_2= two = 2 \n'), { env: { A: '1', B_2: ' two = 2 ' } });
  assert.deepEqual(parseEnv('EMPTY='), { env: { EMPTY: '' } });
  assert.deepEqual(parseEnv(''), { env: {} });
  assert.deepEqual(parseEnv('A=1\n1BAD=x'), { invalid: '1BAD=x' });
  assert.deepEqual(parseEnv('no equals sign'), { invalid: 'no equals sign' });
  assert.deepEqual(parseEnv('=value'), { invalid: '=value' });
});

test('URL patterns: exact segments, :params decoded, a trailing slash tolerated, a malformed escape matches nothing', () => {
  assert.deepEqual(match('/', '/'), {});
  assert.equal(match('/', '/images'), null);
  assert.deepEqual(match('/images', '/images/'), {});
  assert.deepEqual(match('/containers/:id', '/containers/abc%2Fd'), { id: 'abc/d' });
  assert.equal(match('/containers/:id', '/containers'), null);
  assert.equal(match('/containers/:id', '/containers/'), null);
  assert.equal(match('/containers/:id', '/containers/a/b'), null);
  assert.equal(match('/containers/:id', '/containers/%E0%A4%A'), null);
  assert.deepEqual(match('/admin/users', '/admin/users'), {});
});

test('web/src/api/schema.d.ts is what the API document gives (run `npm run web:api-types` after changing the API)', async () => {
  const committed = await readFile(new URL('../../web/src/api/schema.d.ts', import.meta.url), 'utf8');
  assert.ok(
    committed === (await openapiTypes()),
    'web/src/api/schema.d.ts is stale: run `npm run web:api-types`, then `npx tsc -p web/tsconfig.json`',
  );
});
