/**
 * Each Berth service of docker-compose.yml starts with the environment Compose gives it: the file
 * is rendered (`docker-compose config` with the required secrets set) and each service's
 * environment goes through that process's own configuration loader, so that a required setting
 * can never again be missing there (BERTH_INTERNAL_TOKEN once was). Then what the loaders make of
 * it is checked against the rest of the file: the host worker's stream endpoint is reachable from
 * the API's container, DCU links are presigned for an address browsers reach, archives are on a
 * volume, and each worker's healthcheck asks the port its ops server listens on.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  ConfigError,
  loadApiConfig,
  loadControlWorkerConfig,
  loadHostWorkerConfig,
  loadMigrationConfig,
  type ApiConfig,
  type ControlWorkerConfig,
  type HostWorkerConfig,
} from '../../core/config.js';
import { COMPOSE_SECRETS, processEnv, renderCompose, type ComposeConfig, type ComposeService } from '../support/compose-config.js';

let config: ComposeConfig;
before(async () => {
  ({ config } = await renderCompose(COMPOSE_SECRETS));
});

const service = (name: string): ComposeService => {
  const s = config.services[name];
  assert.ok(s, `no service ${name}`);
  return s;
};

/** Loads a service's environment with its loader; a ConfigError fails the test naming the service and the setting. */
function load<T>(name: string, loader: (env: Record<string, string>) => T): T {
  try {
    return loader(processEnv(service(name)));
  } catch (error) {
    if (error instanceof ConfigError) assert.fail(`${name}: ${error.message}`);
    throw error;
  }
}

/** The port a worker's healthcheck asks for /readyz. */
function healthcheckPort(name: string): number {
  const test = service(name).healthcheck?.test;
  const text = Array.isArray(test) ? test.join(' ') : String(test);
  const match = /http:\/\/127\.0\.0\.1:(\d+)\/readyz/.exec(text);
  assert.ok(match, `${name}'s healthcheck does not ask /readyz: ${text}`);
  return Number(match[1]);
}

test('every Berth service loads its environment with its own loader', () => {
  load('migrate', loadMigrationConfig);
  load('api', loadApiConfig);
  load('worker-control', loadControlWorkerConfig);
  load('worker-host', loadHostWorkerConfig);
});

test('the API reaches the host worker: streams on every interface, advertised by service name, same token', () => {
  const api: ApiConfig = load('api', loadApiConfig);
  const host: HostWorkerConfig = load('worker-host', loadHostWorkerConfig);
  assert.equal(host.streams.host, '0.0.0.0');
  assert.equal(host.streams.advertiseHost, 'worker-host', 'the name the API resolves on the compose network');
  assert.notEqual(host.streams.port, 0, 'a fixed port: the registered URL stays valid');
  assert.equal(api.internalToken, host.internalToken);
  assert.equal(api.internalToken, COMPOSE_SECRETS.BERTH_INTERNAL_TOKEN);
  // Plain HTTP on the private compose network is said explicitly (the stream-TLS rule needs it).
  assert.equal(processEnv(service('worker-host')).BERTH_STREAMS_ALLOW_PLAIN, 'true');
  assert.deepEqual(host.temporal, api.temporal);
  assert.equal(host.database.url, api.database.url);
});

test('DCU links are presigned for the published MinIO (or the operator\'s public endpoint), uploads go to minio:9000', async () => {
  const host: HostWorkerConfig = load('worker-host', loadHostWorkerConfig);
  assert.deepEqual([host.minio.endPoint, host.minio.port, host.minio.useSSL], ['minio', 9000, false]);
  const api: ApiConfig = load('api', loadApiConfig);
  assert.ok(api.dcu.minio, 'the API can presign');
  assert.deepEqual([api.dcu.minio.endPoint, api.dcu.minio.port, api.dcu.minio.useSSL], ['127.0.0.1', 9000, false]);
  assert.ok(service('minio').ports?.some((p) => p.startsWith('127.0.0.1:9000:9000')), 'that address is MinIO\'s published port');
  assert.equal(api.dcu.minio.accessKey, host.minio.accessKey);
  assert.equal(api.dcu.minio.secretKey, host.minio.secretKey);

  const { config: public_ } = await renderCompose({ ...COMPOSE_SECRETS, BERTH_MINIO_PUBLIC_ENDPOINT: 'https://files.example.com' });
  const presigning = loadApiConfig(processEnv(public_.services.api!)).dcu.minio!;
  assert.deepEqual([presigning.endPoint, presigning.port, presigning.useSSL], ['files.example.com', 443, true]);
});

test('DCU archives are on a volume, and the host worker has the threads its parallel gzip needs', () => {
  const host: HostWorkerConfig = load('worker-host', loadHostWorkerConfig);
  const mounts = (service('worker-host').volumes ?? []).map((v) => v.split(':'));
  const archive = mounts.find(([, target]) => target === host.dcu.gzipDir);
  assert.ok(archive, `nothing is mounted at ${host.dcu.gzipDir}`);
  assert.ok(Object.keys(config.volumes ?? {}).includes(archive[0]!), `${archive[0]} is a named volume`);
  assert.ok(Number(processEnv(service('worker-host')).UV_THREADPOOL_SIZE) > 4, 'more than libuv\'s default 4 threads');
});

test('each worker\'s healthcheck asks the port its ops server listens on, on an address the check reaches', () => {
  const control: ControlWorkerConfig = load('worker-control', loadControlWorkerConfig);
  const host: HostWorkerConfig = load('worker-host', loadHostWorkerConfig);
  for (const [name, ops] of [['worker-control', control.ops], ['worker-host', host.ops]] as const) {
    assert.notEqual(ops.port, 0, `${name} serves /readyz`);
    assert.equal(healthcheckPort(name), ops.port, name);
    assert.ok(['0.0.0.0', '127.0.0.1'].includes(ops.host), `${name} listens where its own healthcheck reaches`);
  }
  const api: ApiConfig = load('api', loadApiConfig);
  assert.equal(healthcheckPort('api'), api.port);
  assert.equal(api.host, '0.0.0.0', 'the published port reaches the API');
});

test('the image sets BERTH_WORKFLOW_BUNDLE to the bundle its build writes, and the control worker accepts it', async () => {
  const dockerfile = await readFile(new URL('../../Dockerfile', import.meta.url), 'utf8');
  const env = /^ENV BERTH_WORKFLOW_BUNDLE=(\S+)$/m.exec(dockerfile);
  assert.ok(env, 'the Dockerfile sets BERTH_WORKFLOW_BUNDLE');
  assert.match(dockerfile, /^RUN node --import tsx workers\/bundle-workflows\.ts "\$BERTH_WORKFLOW_BUNDLE"/m);
  const control = loadControlWorkerConfig({ ...processEnv(service('worker-control')), BERTH_WORKFLOW_BUNDLE: env[1]! });
  assert.equal(control.workflowBundle, env[1]);
});
