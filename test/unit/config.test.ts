import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConfigError,
  loadApiConfig,
  loadControlWorkerConfig,
  loadHostWorkerConfig,
  parseDuration,
} from '../../core/config.js';

const minimal = { BERTH_DATABASE_URL: 'postgres://berth:pw@127.0.0.1:5432/berth', BERTH_INTERNAL_TOKEN: 'internal-token-0123456789' };

test('defaults serve the native stack', () => {
  const config = loadApiConfig(minimal);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 8080);
  assert.equal(config.temporal.address, '127.0.0.1:7233');
  assert.equal(config.temporal.namespace, 'default');
  assert.equal(config.tokenTtlMs, 24 * 3_600_000);
  assert.equal(config.containers.historyLimit, 2000);
  assert.equal(loadApiConfig({ ...minimal, BERTH_CONTAINER_HISTORY_LIMIT: '25' }).containers.historyLimit, 25);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.rateLimit), 'the config is frozen');
});

test('a missing required value names the variable', () => {
  assert.throws(() => loadApiConfig({}), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.variable, 'BERTH_DATABASE_URL');
    assert.match(error.message, /^BERTH_DATABASE_URL: is required/);
    return true;
  });
  assert.throws(() => loadHostWorkerConfig({ ...minimal, BERTH_MINIO_ACCESS_KEY: 'a', BERTH_MINIO_SECRET_KEY: 'b' }), /BERTH_HOST_ID/);
});

test('malformed values are refused with the variable named', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ BERTH_API_PORT: 'eighty' }, /BERTH_API_PORT: must be an integer/],
    [{ BERTH_API_PORT: '70000' }, /BERTH_API_PORT: must be an integer between 0 and 65535/],
    [{ BERTH_DATABASE_URL: 'mysql://x' }, /BERTH_DATABASE_URL: must use postgres:/],
    [{ BERTH_DATABASE_URL: 'not a url' }, /BERTH_DATABASE_URL: must be a URL/],
    [{ BERTH_TOKEN_TTL: '10 minutes' }, /BERTH_TOKEN_TTL: must be a duration/],
    [{ BERTH_LOG_LEVEL: 'loud' }, /BERTH_LOG_LEVEL: must be one of/],
    [{ BERTH_TEMPORAL_ADDRESS: 'localhost' }, /BERTH_TEMPORAL_ADDRESS: must be host:port/],
    [{ BERTH_ADMIN_PASSWORD: 'short' }, /BERTH_ADMIN_PASSWORD: must be at least 12/],
    [{ BERTH_ADMIN_USERNAME: 'Admin!' }, /BERTH_ADMIN_USERNAME/],
    [{ BERTH_HOST_STALE_AFTER: '1s', BERTH_HOST_HEARTBEAT_INTERVAL: '5s' }, /BERTH_HOST_STALE_AFTER: must be longer/],
    [{ BERTH_CONTAINER_HISTORY_LIMIT: '10' }, /BERTH_CONTAINER_HISTORY_LIMIT: must be an integer between 20/],
    [{ BERTH_CONTAINER_HISTORY_LIMIT: 'lots' }, /BERTH_CONTAINER_HISTORY_LIMIT: must be an integer/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadApiConfig({ ...minimal, ...env }), message, JSON.stringify(env));
  }
});

test('host worker settings', () => {
  const config = loadHostWorkerConfig({
    ...minimal,
    BERTH_HOST_ID: 'host-a',
    BERTH_DOCKER_HOST: 'unix:///tmp/docker.sock',
    BERTH_MINIO_ENDPOINT: 'https://minio.example:9443',
    BERTH_MINIO_ACCESS_KEY: 'key',
    BERTH_MINIO_SECRET_KEY: 'secret',
  });
  assert.deepEqual(config.minio, { endPoint: 'minio.example', port: 9443, useSSL: true, accessKey: 'key', secretKey: 'secret' });
  assert.throws(
    () => loadHostWorkerConfig({ ...minimal, BERTH_HOST_ID: 'Host A', BERTH_MINIO_ACCESS_KEY: 'a', BERTH_MINIO_SECRET_KEY: 'b' }),
    /BERTH_HOST_ID: must be lowercase/,
  );
});

test('control worker: the audit log retention (BERTH_AUDIT_RETENTION_DAYS), at least a day', () => {
  assert.deepEqual(loadControlWorkerConfig(minimal).audit, { retentionDays: 365 });
  assert.equal(loadControlWorkerConfig({ ...minimal, BERTH_AUDIT_RETENTION_DAYS: '30' }).audit.retentionDays, 30);
  assert.equal(loadControlWorkerConfig({ ...minimal, BERTH_AUDIT_RETENTION_DAYS: '1' }).audit.retentionDays, 1);
  for (const value of ['0', '-5', 'a year', '1.5', '36501']) {
    assert.throws(() => loadControlWorkerConfig({ ...minimal, BERTH_AUDIT_RETENTION_DAYS: value }), /^ConfigError: BERTH_AUDIT_RETENTION_DAYS: must be an integer/, value);
  }
});

test('durations', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration('1.5h'), undefined);
  assert.equal(parseDuration(''), undefined);
});

test('CORS origins: none by default; exact origins only', () => {
  assert.deepEqual(loadApiConfig(minimal).corsOrigins, []);
  assert.deepEqual(loadApiConfig({ ...minimal, BERTH_CORS_ORIGINS: '' }).corsOrigins, []);
  assert.deepEqual(
    loadApiConfig({ ...minimal, BERTH_CORS_ORIGINS: 'https://console.example, http://127.0.0.1:3000,https://console.example' }).corsOrigins,
    ['https://console.example', 'http://127.0.0.1:3000'],
  );
  for (const bad of ['*', 'console.example', 'https://console.example/', 'https://console.example/app', 'ftp://files.example', 'https://console.example:443', 'null']) {
    assert.throws(() => loadApiConfig({ ...minimal, BERTH_CORS_ORIGINS: bad }), /BERTH_CORS_ORIGINS: must be comma-separated origins/, bad);
  }
});

test('DCU links are presigned for BERTH_MINIO_PUBLIC_ENDPOINT, by default the endpoint itself', () => {
  const keys = { BERTH_MINIO_ACCESS_KEY: 'k', BERTH_MINIO_SECRET_KEY: 's' };
  const same = loadApiConfig({ ...minimal, ...keys, BERTH_MINIO_ENDPOINT: 'http://minio:9000' }).dcu.minio!;
  assert.deepEqual([same.endPoint, same.port, same.useSSL], ['minio', 9000, false]);
  const pub = loadApiConfig({ ...minimal, ...keys, BERTH_MINIO_ENDPOINT: 'http://minio:9000', BERTH_MINIO_PUBLIC_ENDPOINT: 'https://files.example.com' }).dcu.minio!;
  assert.deepEqual([pub.endPoint, pub.port, pub.useSSL, pub.accessKey], ['files.example.com', 443, true, 'k']);
  const v6 = loadApiConfig({ ...minimal, ...keys, BERTH_MINIO_PUBLIC_ENDPOINT: 'http://[::1]:9000' }).dcu.minio!;
  assert.equal(v6.endPoint, '::1');
  // Host workers upload to BERTH_MINIO_ENDPOINT; the public one is the API's alone.
  const host = loadHostWorkerConfig({ ...minimal, ...keys, BERTH_HOST_ID: 'h', BERTH_MINIO_ENDPOINT: 'http://minio:9000', BERTH_MINIO_PUBLIC_ENDPOINT: 'https://files.example.com' });
  assert.equal(host.minio.endPoint, 'minio');
  for (const bad of ['ftp://files.example.com', 'https://files.example.com/minio', 'http://u:p@files.example.com', 'not a url']) {
    assert.throws(() => loadApiConfig({ ...minimal, ...keys, BERTH_MINIO_PUBLIC_ENDPOINT: bad }), /BERTH_MINIO_PUBLIC_ENDPOINT/, bad);
  }
  assert.throws(() => loadApiConfig({ ...minimal, BERTH_MINIO_ENDPOINT: 'http://minio:9000/path' }), /BERTH_MINIO_ENDPOINT: must be scheme:\/\/host\[:port\]/);
});

test('workers serve /healthz and /readyz on BERTH_METRICS_HOST:BERTH_METRICS_PORT (control 9470 by default, host workers only when set)', () => {
  const control = loadControlWorkerConfig(minimal);
  assert.deepEqual(control.ops, { host: '127.0.0.1', port: 9470 });
  const host = loadHostWorkerConfig({ ...minimal, BERTH_HOST_ID: 'h', BERTH_MINIO_ACCESS_KEY: 'k', BERTH_MINIO_SECRET_KEY: 's' });
  assert.deepEqual(host.ops, { host: '127.0.0.1', port: 0 });
  assert.deepEqual(loadControlWorkerConfig({ ...minimal, BERTH_METRICS_HOST: '0.0.0.0', BERTH_METRICS_PORT: '0' }).ops, { host: '0.0.0.0', port: 0 });
  assert.throws(() => loadControlWorkerConfig({ ...minimal, BERTH_METRICS_PORT: '70000' }), /BERTH_METRICS_PORT/);
});

test('BERTH_MAX_CACHED_WORKFLOWS: unset (the SDK sizes the cache from the heap), 0 (no cache) or at least 2', () => {
  assert.equal(loadControlWorkerConfig(minimal).maxCachedWorkflows, null);
  assert.equal(loadControlWorkerConfig({ ...minimal, BERTH_MAX_CACHED_WORKFLOWS: '' }).maxCachedWorkflows, null);
  assert.equal(loadControlWorkerConfig({ ...minimal, BERTH_MAX_CACHED_WORKFLOWS: '0' }).maxCachedWorkflows, 0);
  assert.equal(loadControlWorkerConfig({ ...minimal, BERTH_MAX_CACHED_WORKFLOWS: '2' }).maxCachedWorkflows, 2);
  assert.equal(loadControlWorkerConfig({ ...minimal, BERTH_MAX_CACHED_WORKFLOWS: '12000' }).maxCachedWorkflows, 12000);
  assert.throws(() => loadControlWorkerConfig({ ...minimal, BERTH_MAX_CACHED_WORKFLOWS: '1' }), /^ConfigError: BERTH_MAX_CACHED_WORKFLOWS: must be 0 \(no cache\) or at least 2/);
  for (const value of ['-5', 'many', '2.5']) {
    assert.throws(() => loadControlWorkerConfig({ ...minimal, BERTH_MAX_CACHED_WORKFLOWS: value }), /^ConfigError: BERTH_MAX_CACHED_WORKFLOWS: must be an integer/, value);
  }
});

test('BERTH_WORKFLOW_BUNDLE: an absolute path, or unset (the worker bundles workflows/ itself)', () => {
  assert.equal(loadControlWorkerConfig(minimal).workflowBundle, null);
  assert.equal(loadControlWorkerConfig({ ...minimal, BERTH_WORKFLOW_BUNDLE: '/app/dist/workflow-bundle.js' }).workflowBundle, '/app/dist/workflow-bundle.js');
  assert.throws(() => loadControlWorkerConfig({ ...minimal, BERTH_WORKFLOW_BUNDLE: 'dist/workflow-bundle.js' }), /BERTH_WORKFLOW_BUNDLE: must be an absolute path/);
});
