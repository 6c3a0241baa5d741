import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DCU_PROGRESS,
  DCU_STATES,
  IllegalDcuTransitionError,
  allowedNext,
  assertTransition,
  canTransition,
  isDcuState,
  isTerminal,
  type DcuState,
} from '../../core/dcu-state.js';
import { DCU_GZIP_FILE, dcuGzipFileName, dcuObjectName, shortDigest } from '../../core/dcu-names.js';
import { parseImageReference } from '../../core/image-ref.js';
import { ConfigError, loadApiConfig, loadControlWorkerConfig, loadHostWorkerConfig } from '../../core/config.js';

const LEGAL: Array<[DcuState, DcuState]> = [
  ['idle', 'downloading'],
  ['downloading', 'compressing'],
  ['compressing', 'uploading'],
  ['uploading', 'completed'],
  ['idle', 'failed'],
  ['downloading', 'failed'],
  ['compressing', 'failed'],
  ['uploading', 'failed'],
];

test('exactly the pipeline transitions and "any working state → failed" are legal', () => {
  for (const from of DCU_STATES) {
    for (const to of DCU_STATES) {
      const legal = LEGAL.some(([f, t]) => f === from && t === to);
      assert.equal(canTransition(from, to), legal, `${from} → ${to}`);
      if (legal) assert.doesNotThrow(() => assertTransition(from, to));
      else assert.throws(() => assertTransition(from, to), IllegalDcuTransitionError, `${from} → ${to}`);
    }
  }
});

test('no skipping, no going back, no leaving a terminal state, no self-loops', () => {
  assert.equal(canTransition('idle', 'compressing'), false);
  assert.equal(canTransition('downloading', 'uploading'), false);
  assert.equal(canTransition('idle', 'completed'), false);
  assert.equal(canTransition('uploading', 'downloading'), false);
  assert.equal(canTransition('completed', 'failed'), false);
  assert.equal(canTransition('failed', 'idle'), false);
  assert.equal(canTransition('downloading', 'downloading'), false);
  assert.ok(isTerminal('completed') && isTerminal('failed'));
  assert.ok(!isTerminal('idle') && !isTerminal('uploading'));
  assert.deepEqual(allowedNext('completed'), []);
  assert.match(new IllegalDcuTransitionError('completed', 'idle').message, /completed → idle/);
});

test('unknown states are never legal', () => {
  assert.equal(isDcuState('paused'), false);
  assert.equal(isDcuState('idle'), true);
  assert.equal(canTransition('paused' as DcuState, 'failed'), false);
  assert.equal(canTransition('idle', 'paused' as DcuState), false);
});

test('progress is the original service’s fixed value per state', () => {
  assert.deepEqual(DCU_PROGRESS, { idle: 0, downloading: 25, compressing: 50, uploading: 75, completed: 100, failed: -1 });
});

test('object names: <username>/<repository>_<tag>-<short digest>.tar.gz, safe characters only', () => {
  const id = 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
  assert.equal(shortDigest(id), '0123456789ab');
  assert.equal(
    dcuObjectName('alice', parseImageReference('127.0.0.1:5000/library/busybox:1.35'), id),
    'alice/127.0.0.1_5000_library_busybox_1.35-0123456789ab.tar.gz',
  );
  assert.equal(dcuObjectName('bob', parseImageReference('busybox'), id), 'bob/docker.io_library_busybox_latest-0123456789ab.tar.gz');
  const digestOnly = parseImageReference(`busybox@sha256:${'a'.repeat(64)}`);
  assert.match(dcuObjectName('bob', digestOnly, id), /^bob\/docker\.io_library_busybox_digest-0123456789ab\.tar\.gz$/);

  // Crafted usernames and repositories cannot escape the user's prefix.
  for (const [username, repository] of [
    ['../../etc', 'x/../../y'],
    ['..', '..'],
    ['a/b', 'c\\d'],
    ['.hidden', '/abs/path'],
    ['ü\u0000', 'x'.repeat(500)],
  ]) {
    const name = dcuObjectName(username!, { repository: repository!, tag: '../t' }, id);
    assert.equal(name.split('/').length, 2, name);
    assert.ok(!name.split('/').some((part) => part === '..' || part === '.' || part.startsWith('.')), name);
    assert.match(name, /^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+\.tar\.gz$/, name);
    assert.ok(name.length < 260, name);
    const file = dcuGzipFileName('6f1c1d2e-0000-4000-8000-000000000000', name);
    assert.match(file, DCU_GZIP_FILE);
    assert.ok(!file.includes('/'));
  }
});

// BERTH_INTERNAL_TOKEN: the API and host workers need it (containers); harmless elsewhere.
const minimal = { BERTH_DATABASE_URL: 'postgres://berth:pw@127.0.0.1:5432/berth', BERTH_INTERNAL_TOKEN: 'x'.repeat(32) };
const host = { ...minimal, BERTH_HOST_ID: 'host-a', BERTH_MINIO_ACCESS_KEY: 'k', BERTH_MINIO_SECRET_KEY: 's' };

test('DCU configuration: defaults, and malformed values named', () => {
  const control = loadControlWorkerConfig(minimal);
  assert.deepEqual(control.dcu, { gzipCleanupCron: '0 0 * * *', objectCleanupCron: '0 0 * * 0', gzipRetentionDays: 1, objectRetentionDays: 7 });
  const hostConfig = loadHostWorkerConfig({ ...host, BERTH_STATE_DIR: '/var/lib/berth' });
  assert.deepEqual(hostConfig.dcu, { gzipDir: '/var/lib/berth/dcu', bucket: 'berth-dcu', partSizeBytes: 16 * 1024 * 1024, minFreeMb: 1024 });
  assert.match(loadHostWorkerConfig(host).dcu.gzipDir, /\/\.local\/state\/berth\/dcu$|berth-dcu$/);
  const api = loadApiConfig(minimal);
  assert.equal(api.dcu.minio, null, 'no MinIO credentials: downloads are off, the API still starts');
  assert.equal(api.dcu.downloadUrlTtlSeconds, 900);
  assert.equal(loadApiConfig({ ...minimal, BERTH_MINIO_ACCESS_KEY: 'k', BERTH_MINIO_SECRET_KEY: 's' }).dcu.minio?.accessKey, 'k');

  const cases: Array<[() => unknown, RegExp]> = [
    [() => loadControlWorkerConfig({ ...minimal, BERTH_DCU_GZIP_CLEANUP_CRON: 'every night' }), /BERTH_DCU_GZIP_CLEANUP_CRON/],
    [() => loadControlWorkerConfig({ ...minimal, BERTH_DCU_OBJECT_RETENTION_DAYS: '-1' }), /BERTH_DCU_OBJECT_RETENTION_DAYS/],
    [() => loadHostWorkerConfig({ ...host, BERTH_DCU_GZIP_DIR: 'relative/dir' }), /BERTH_DCU_GZIP_DIR: must be an absolute path/],
    [() => loadHostWorkerConfig({ ...host, BERTH_DCU_PART_SIZE_MB: '1' }), /BERTH_DCU_PART_SIZE_MB/],
    [() => loadHostWorkerConfig({ ...host, BERTH_DCU_BUCKET: 'Bad_Bucket' }), /BERTH_DCU_BUCKET/],
    [() => loadApiConfig({ ...minimal, BERTH_MINIO_ACCESS_KEY: 'k' }), /BERTH_MINIO_SECRET_KEY/],
  ];
  for (const [load, message] of cases) assert.throws(load, (error: unknown) => error instanceof ConfigError && message.test(error.message));
  assert.equal(loadControlWorkerConfig({ ...minimal, BERTH_DCU_OBJECT_RETENTION_DAYS: '0' }).dcu.objectRetentionDays, 0);
});
