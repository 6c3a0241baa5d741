/**
 * docker-compose.yml validates: `docker-compose config` (Debian's docker-compose 1.29) accepts it
 * with the required secrets set, lists every service, mounts the Docker socket into the host
 * worker, publishes on 127.0.0.1 only (or the operator's BERTH_BIND_ADDRESS), gives every
 * long-running service a healthcheck and every dependency a condition, keeps its state on named
 * volumes, pins its images, and refuses to render without any of the secrets.
 * (test/unit/compose-env.test.ts loads each Berth service's environment with its loader;
 * test/compose/boot.test.ts starts it.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMPOSE_SECRETS, compose, renderCompose } from '../support/compose-config.js';

const SERVICES = [
  'postgres',
  'temporal-schema',
  'temporal',
  'temporal-namespace',
  'temporal-ui',
  'minio',
  'migrate',
  'api',
  'worker-control',
  'worker-host',
];
/** Run once per `up` and exit: no healthcheck, and what depends on them waits for their success. */
const JOBS = ['temporal-schema', 'temporal-namespace', 'migrate'];

test('docker-compose config renders every service with the required secrets set', async () => {
  const { text, config } = await renderCompose(COMPOSE_SECRETS);
  const { stdout: names } = await compose(['config', '--services'], COMPOSE_SECRETS);
  assert.deepEqual(names.trim().split('\n').sort(), [...SERVICES].sort());
  assert.deepEqual(Object.keys(config.services).sort(), [...SERVICES].sort());

  const host = config.services['worker-host']!;
  assert.ok(
    host.volumes?.some((v) => /^\/var\/run\/docker\.sock:\/var\/run\/docker\.sock(:rw)?$/.test(v)),
    `worker-host does not mount /var/run/docker.sock: ${host.volumes?.join(', ')}`,
  );
  assert.equal(host.environment?.BERTH_DOCKER_HOST, 'unix:///var/run/docker.sock');
  assert.equal(host.user, 'root');

  // The secrets were interpolated from the environment, not hard-coded.
  assert.equal(config.services.api!.environment?.BERTH_ADMIN_PASSWORD, COMPOSE_SECRETS.BERTH_ADMIN_PASSWORD);
  assert.equal(config.services.api!.environment?.BERTH_INTERNAL_TOKEN, COMPOSE_SECRETS.BERTH_INTERNAL_TOKEN);
  assert.equal(host.environment?.BERTH_INTERNAL_TOKEN, COMPOSE_SECRETS.BERTH_INTERNAL_TOKEN);
  assert.ok(text.includes(`postgres://berth:${COMPOSE_SECRETS.BERTH_POSTGRES_PASSWORD}@postgres:5432/berth`));
  assert.equal(config.services.minio!.environment?.MINIO_ROOT_PASSWORD, COMPOSE_SECRETS.BERTH_MINIO_SECRET_KEY);

  // Every published port listens on the loopback interface only.
  const published = Object.values(config.services).flatMap((s) => s.ports ?? []);
  assert.ok(published.length >= 5, `expected published ports, found: ${published.join(', ')}`);
  for (const port of published) assert.match(port, /^127\.0\.0\.1:\d+:\d+/);
  // ... or on the address the operator gives.
  const { config: bound } = await renderCompose({ ...COMPOSE_SECRETS, BERTH_BIND_ADDRESS: '192.0.2.10' });
  for (const port of Object.values(bound.services).flatMap((s) => s.ports ?? [])) assert.match(port, /^192\.0\.2\.10:\d+:\d+/);
});

test('every long-running service has a healthcheck, every dependency a condition, every job a success to wait for', async () => {
  const { config } = await renderCompose(COMPOSE_SECRETS);
  for (const [name, service] of Object.entries(config.services)) {
    if (JOBS.includes(name)) {
      assert.equal(service.restart, 'no', `${name} runs once`);
    } else {
      assert.ok(service.healthcheck?.test, `${name} has no healthcheck`);
      assert.notEqual(service.restart, 'no', `${name} is restarted`);
    }
    for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
      const expected = JOBS.includes(dependency) ? 'service_completed_successfully' : 'service_healthy';
      assert.equal(condition, expected, `${name} -> ${dependency}`);
    }
  }
  // Berth's processes start on a migrated database and a namespace Temporal serves.
  for (const name of ['api', 'worker-control', 'worker-host']) {
    const dependencies = Object.keys(config.services[name]!.depends_on ?? {});
    assert.ok(dependencies.includes('migrate') && dependencies.includes('temporal-namespace'), `${name}: ${dependencies.join(', ')}`);
  }
  // The Temporal server starts on a set-up schema; the namespace job waits for a healthy server.
  assert.equal(config.services.temporal!.depends_on?.['temporal-schema']?.condition, 'service_completed_successfully');
  assert.equal(config.services['temporal-namespace']!.depends_on?.temporal?.condition, 'service_healthy');
});

test('state is on named volumes: PostgreSQL, MinIO and the DCU archives', async () => {
  const { config } = await renderCompose(COMPOSE_SECRETS);
  const volumes = Object.keys(config.volumes ?? {});
  const mounted = (service: string, target: string) =>
    config.services[service]!.volumes?.find((v) => v.split(':')[1] === target)?.split(':')[0];
  for (const [service, target] of [
    ['postgres', '/var/lib/postgresql/data'],
    ['minio', '/data'],
    ['worker-host', String(config.services['worker-host']!.environment?.BERTH_DCU_GZIP_DIR)],
  ] as const) {
    const source = mounted(service, target);
    assert.ok(source && volumes.includes(source), `${service}: ${target} is not on a named volume`);
  }
});

test('images: the official Temporal server, admin-tools and UI, MinIO from quay.io, every tag pinned', async () => {
  const { config } = await renderCompose(COMPOSE_SECRETS);
  const image = (name: string) => config.services[name]!.image ?? '';
  assert.match(image('temporal'), /^temporalio\/server:\d+\.\d+\.\d+$/);
  assert.match(image('temporal-schema'), /^temporalio\/admin-tools:\d+\.\d+\.\d+/);
  assert.equal(image('temporal-namespace'), image('temporal-schema'));
  assert.ok(image('temporal-schema').startsWith(`temporalio/admin-tools:${image('temporal').split(':')[1]}`), 'admin-tools of the server\'s version');
  assert.match(image('temporal-ui'), /^temporalio\/ui:\d+\.\d+\.\d+$/);
  assert.match(image('minio'), /^quay\.io\/minio\/minio:RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$/);
  for (const [name, service] of Object.entries(config.services)) {
    assert.ok(service.image, `${name} names an image`);
    assert.ok(!/:latest$/.test(service.image) && service.image.includes(':'), `${name}: ${service.image} is not pinned`);
    assert.ok(!/auto-setup/.test(service.image), `${name}: temporalio/auto-setup is deprecated`);
  }
});

for (const secret of Object.keys(COMPOSE_SECRETS) as Array<keyof typeof COMPOSE_SECRETS>) {
  test(`docker-compose config fails without ${secret} and names it`, async () => {
    const { [secret]: _omitted, ...rest } = COMPOSE_SECRETS;
    await assert.rejects(compose(['config'], rest), (error: Error & { code?: unknown; stderr?: string }) => {
      assert.notEqual(error.code, 0);
      assert.match(error.stderr ?? '', new RegExp(secret));
      return true;
    });
  });
}
