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
  const rows = lines.map((line) => {
    const parts = line.trim().split(/\s{2,}/);
    return { name: parts[0]!, address: parts[1]!, state: parts.at(-1)! };
  });
  const expected = [
    'postgresql', 'docker host-a', 'docker host-b', 'registry', 'registry-auth', 'temporal', 'temporal-ui',
    'minio', 'minio-console', 'api', 'worker-control', 'metrics', 'worker-host-a', 'metrics', 'worker-host-b', 'metrics', 'prometheus',
  ];
  assert.deepEqual(rows.map((r) => r.name), expected);
  for (const row of rows) assert.equal(row.state, 'up', `${row.name} (${row.address}) is up`);
  const address = (name: string) => rows.find((r) => r.name === name)?.address;
  assert.equal(address('temporal-ui'), 'http://127.0.0.1:8233');
  assert.equal(address('worker-host-b'), 'task queue berth-host-host-b');
  assert.equal(address('api'), 'http://127.0.0.1:8080 (metrics: /metrics)');
  assert.equal(address('prometheus'), 'http://127.0.0.1:9090');
  // Each worker's metrics row follows its own, with its ops port.
  const metricsAfter = (worker: string) => rows[rows.findIndex((r) => r.name === worker) + 1]?.address;
  assert.equal(metricsAfter('worker-control'), 'http://127.0.0.1:9470/metrics');
  assert.equal(metricsAfter('worker-host-a'), 'http://127.0.0.1:9471/metrics');
  assert.equal(metricsAfter('worker-host-b'), 'http://127.0.0.1:9472/metrics');
});
