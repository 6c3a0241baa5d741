/**
 * Ledger idempotency keys keep the formats of the entries already written: a retried activity of
 * a workflow that started before a change must find the entry its first attempt made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { billingKeys } from '../../billing/keys.js';

const id = '7b0c1d3e-0000-4000-8000-000000000001';

test('every key builder keeps its format', () => {
  assert.equal(billingKeys.openingBalance(id), `user-opening-balance-${id}`);
  assert.equal(billingKeys.credit(id, 'req-1'), `credit-${id}-req-1`);
  assert.equal(billingKeys.imageCharge(`pull-${id}`), `image-charge-pull-${id}`);
  assert.equal(billingKeys.imageRefund(id), `image-refund-${id}`);
  assert.equal(billingKeys.containerPeriod(id, 3, 2), `container-${id}-run-3-period-2`);
  assert.equal(billingKeys.containerCreateRefund(id), `container-${id}-create-refund`);
  assert.equal(billingKeys.dcuCharge(id), `dcu-charge-${id}`);
});

test('no shipped module but billing/keys.ts spells a ledger key', async () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const offenders: string[] = [];
  for (const dir of ['activities', 'api', 'billing', 'contracts', 'core', 'repositories', 'services', 'workers', 'workflows']) {
    for (const file of await readdir(join(root, dir), { recursive: true })) {
      if (!file.endsWith('.ts') || `${dir}/${file}` === 'billing/keys.ts') continue;
      const text = await readFile(join(root, dir, file), 'utf8');
      // The key prefixes of the ledger, as template literals or strings.
      if (/[`'"](user-opening-balance-|credit-|image-charge-|image-refund-|dcu-charge-)|-run-\$\{|-create-refund/.test(text)) offenders.push(`${dir}/${file}`);
    }
  }
  assert.deepEqual(offenders, []);
});
