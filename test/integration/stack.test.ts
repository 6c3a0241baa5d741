import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('stack.sh status lists every component up, with its address', async () => {
  const { stdout } = await promisify(execFile)('bash', ['scripts/stack.sh', 'status'], { cwd: root });
  const [mode, header, ...lines] = stdout.trim().split('\n');
  assert.equal(mode, 'mode: development (npm run up)');
  assert.match(header!, /^COMPONENT\s+ADDRESS\s+STATE$/);
  const rows = new Map(
    lines
      .map((line) => {
        const parts = line.trim().split(/\s{2,}/);
        return [parts[0]!, { address: parts[1]!, state: parts.at(-1)! }] as const;
      }),
  );
  const expected = [
    'postgresql', 'docker host-a', 'docker host-b', 'registry', 'registry-auth', 'temporal', 'temporal-ui',
    'minio', 'minio-console', 'api', 'worker-control', 'worker-host-a', 'worker-host-b',
  ];
  assert.deepEqual([...rows.keys()], expected);
  for (const [name, row] of rows) assert.equal(row.state, 'up', `${name} (${row.address}) is up`);
  assert.equal(rows.get('temporal-ui')?.address, 'http://127.0.0.1:8233');
  assert.equal(rows.get('worker-host-b')?.address, 'task queue berth-host-host-b');
});
