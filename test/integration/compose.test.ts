/**
 * docker-compose.yml validates: `docker-compose config` (Debian's docker-compose 1.29)
 * accepts it with the required secrets set, lists every service, mounts the Docker socket
 * into the host worker, publishes on 127.0.0.1 only, and refuses to render without the
 * admin password.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const SERVICES = ['postgres', 'temporal', 'temporal-ui', 'minio', 'migrate', 'api', 'worker-control', 'worker-host'];

const SECRETS = {
  BERTH_ADMIN_PASSWORD: 'admin-password-for-tests',
  BERTH_POSTGRES_PASSWORD: 'postgres-password-for-tests',
  BERTH_MINIO_SECRET_KEY: 'minio-secret-for-tests',
};

let scratch = '';
let emptyEnvFile = '';
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'berth-compose-'));
  emptyEnvFile = join(scratch, 'empty.env');
  await writeFile(emptyEnvFile, '');
});
after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/**
 * Runs docker-compose with only PATH, HOME and `vars` in its environment (nothing inherited
 * from the test's own BERTH_* settings), and with an empty env file so a developer's .env
 * next to docker-compose.yml cannot fill in what the test leaves out.
 */
function compose(args: string[], vars: Record<string, string>) {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...vars };
  return run('docker-compose', ['-f', 'docker-compose.yml', '--env-file', emptyEnvFile, ...args], { cwd: ROOT, env });
}

/** The lines of one top-level service's block in `docker-compose config` output. */
function serviceBlock(config: string, name: string): string[] {
  const lines = config.split('\n');
  const start = lines.indexOf(`  ${name}:`);
  assert.notEqual(start, -1, `service ${name} not found in the rendered config`);
  const block: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('    ')) break; // the next service, or the next top-level key
    block.push(line);
  }
  return block;
}

test('docker-compose config renders every service with the required secrets set', async () => {
  const { stdout } = await compose(['config'], SECRETS); // rejects on a non-zero exit
  const { stdout: names } = await compose(['config', '--services'], SECRETS);
  assert.deepEqual(names.trim().split('\n').sort(), [...SERVICES].sort());

  for (const name of SERVICES) serviceBlock(stdout, name);

  const host = serviceBlock(stdout, 'worker-host').map((line) => line.trim());
  assert.ok(
    host.some((line) => /^- \/var\/run\/docker\.sock:\/var\/run\/docker\.sock(:rw)?$/.test(line)),
    `worker-host does not mount /var/run/docker.sock:\n${host.join('\n')}`,
  );
  assert.ok(host.includes('BERTH_DOCKER_HOST: unix:///var/run/docker.sock'));
  assert.ok(host.includes('user: root'));

  // The secrets were interpolated from the environment, not hard-coded.
  assert.ok(stdout.includes(`BERTH_ADMIN_PASSWORD: ${SECRETS.BERTH_ADMIN_PASSWORD}`));
  assert.ok(stdout.includes(`postgres://berth:${SECRETS.BERTH_POSTGRES_PASSWORD}@postgres:5432/berth`));
  assert.ok(stdout.includes(`MINIO_ROOT_PASSWORD: ${SECRETS.BERTH_MINIO_SECRET_KEY}`));

  // Every published port listens on the loopback interface only.
  const published = stdout.split('\n').filter((line) => /^\s+- [\d.]*:?\d+:\d+(\/\w+)?$/.test(line));
  assert.ok(published.length >= 5, `expected published ports, found:\n${published.join('\n')}`);
  for (const line of published) assert.match(line.trim(), /^- 127\.0\.0\.1:\d+:\d+/);
});

test('docker-compose config fails without BERTH_ADMIN_PASSWORD and names it', async () => {
  const { BERTH_ADMIN_PASSWORD: _omitted, ...rest } = SECRETS;
  await assert.rejects(compose(['config'], rest), (error: Error & { code?: unknown; stderr?: string }) => {
    assert.notEqual(error.code, 0);
    assert.match(error.stderr ?? '', /BERTH_ADMIN_PASSWORD/);
    return true;
  });
});
