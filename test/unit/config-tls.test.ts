/**
 * TLS settings: Temporal (TLS, mutual TLS, API key), Docker over TCP with mutual TLS, the host
 * workers' log and stats endpoint over HTTPS. The PEM files are made by openssl in a temporary
 * directory (test/support/tls.ts).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, isLoopbackHost, loadApiConfig, loadControlWorkerConfig, loadHostWorkerConfig } from '../../core/config.js';
import { temporalConnectionOptions } from '../../core/temporal.js';
import { dockerClient, dockerConnectionFor } from '../../activities/docker-client.js';
import { dockerConnection } from '../../activities/save-gzip.js';
import { REDACTED, redactJsonLine } from '../../core/redact.js';
import { throwawayPki, type CertFiles, type Pki } from '../support/tls.js';

const minimal = { BERTH_DATABASE_URL: 'postgres://berth:pw@127.0.0.1:5432/berth', BERTH_INTERNAL_TOKEN: 'internal-token-0123456789' };
const hostMinimal = { ...minimal, BERTH_HOST_ID: 'host-a', BERTH_MINIO_ACCESS_KEY: 'access', BERTH_MINIO_SECRET_KEY: 'secret-key' };

let pki: Pki;
let client: CertFiles;
let other: CertFiles;
const pem: Record<string, string> = {};
const cleanups: Array<() => unknown> = [];
before(async () => {
  pki = await throwawayPki({ after: (fn) => cleanups.push(fn) });
  client = await pki.leaf('client', ['DNS:berth.test']);
  other = await pki.leaf('other', ['DNS:other.test']);
  for (const [name, path] of Object.entries({ ca: pki.ca.cert, cert: client.cert, key: client.key })) pem[name] = await readFile(path, 'utf8');
  // Children run as nobody when this runs as root (loadInChild): let them reach the certificates.
  await chmod(pki.dir, 0o711);
  await chmod(client.cert, 0o644);
});
test.after(async () => {
  for (const fn of cleanups) await fn();
});

/** Asserts that `load` throws a ConfigError for `variable` whose message matches `message`. */
function refused(load: () => unknown, variable: string, message: RegExp) {
  assert.throws(load, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `a ConfigError, got ${String(error)}`);
    assert.equal(error.variable, variable, error.message);
    assert.match(error.message, message);
    return true;
  });
}

test('no TLS setting: plaintext everywhere, as the native stack runs', () => {
  const api = loadApiConfig(minimal);
  assert.equal(api.temporal.tls, null);
  assert.equal(api.temporal.apiKey, undefined);
  assert.equal(api.streamsCa, null);
  assert.deepEqual(temporalConnectionOptions(api.temporal), { address: '127.0.0.1:7233' });
  const host = loadHostWorkerConfig(hostMinimal);
  assert.deepEqual(host.docker, { endpoint: 'unix:///var/run/docker.sock', tls: null });
  assert.deepEqual(host.streams, { host: '127.0.0.1', port: 0, advertiseHost: '127.0.0.1', tls: null });
});

test('Temporal: CA, client certificate and server name are read at load and reach the connection options', () => {
  const config = loadControlWorkerConfig({
    ...minimal,
    BERTH_TEMPORAL_ADDRESS: 'temporal.example:7233',
    BERTH_TEMPORAL_TLS_CA: pki.ca.cert,
    BERTH_TEMPORAL_TLS_CERT: client.cert,
    BERTH_TEMPORAL_TLS_KEY: client.key,
    BERTH_TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.example',
  });
  assert.deepEqual(config.temporal.tls, { ca: pem.ca, client: { cert: pem.cert, key: pem.key }, serverName: 'frontend.temporal.example' });
  assert.ok(Object.isFrozen(config.temporal.tls) && Object.isFrozen(config.temporal.tls?.client), 'frozen like the rest');
  const options = temporalConnectionOptions(config.temporal);
  assert.equal(options.address, 'temporal.example:7233');
  assert.equal(options.tls?.serverNameOverride, 'frontend.temporal.example');
  assert.equal(Buffer.from(options.tls.serverRootCACertificate!).toString('utf8'), pem.ca);
  assert.equal(Buffer.from(options.tls.clientCertPair!.crt).toString('utf8'), pem.cert);
  assert.equal(Buffer.from(options.tls.clientCertPair!.key).toString('utf8'), pem.key);
  assert.equal(options.apiKey, undefined);
});

test('Temporal: an API key turns TLS on (system CAs); BERTH_TEMPORAL_TLS=true alone too; false with either is refused', () => {
  const withKey = loadApiConfig({ ...minimal, BERTH_TEMPORAL_API_KEY: 'tcld-key-value' });
  assert.deepEqual(withKey.temporal.tls, {});
  assert.equal(withKey.temporal.apiKey, 'tcld-key-value');
  assert.deepEqual(temporalConnectionOptions(withKey.temporal), { address: '127.0.0.1:7233', tls: {}, apiKey: 'tcld-key-value' });
  assert.deepEqual(loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS: 'true' }).temporal.tls, {});
  assert.equal(loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS: 'false' }).temporal.tls, null);
  assert.deepEqual(loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS_SERVER_NAME: 'temporal.test' }).temporal.tls, { serverName: 'temporal.test' });
  refused(() => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS: 'false', BERTH_TEMPORAL_API_KEY: 'tcld-key-value' }), 'BERTH_TEMPORAL_TLS', /is false, but BERTH_TEMPORAL_API_KEY needs TLS/);
  refused(() => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS: 'false', BERTH_TEMPORAL_TLS_CA: pki.ca.cert }), 'BERTH_TEMPORAL_TLS', /BERTH_TEMPORAL_TLS_CA needs TLS/);
  refused(() => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS: 'yes' }), 'BERTH_TEMPORAL_TLS', /must be true or false, got "yes"/);
  refused(() => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS_SERVER_NAME: 'not a name' }), 'BERTH_TEMPORAL_TLS_SERVER_NAME', /must be a DNS name/);
});

test('Temporal: a certificate without its key, a key without its certificate, or a key of another certificate is refused', () => {
  refused(() => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS_CERT: client.cert }), 'BERTH_TEMPORAL_TLS_KEY', /is required with BERTH_TEMPORAL_TLS_CERT/);
  refused(() => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS_KEY: client.key }), 'BERTH_TEMPORAL_TLS_CERT', /is required with BERTH_TEMPORAL_TLS_KEY/);
  refused(
    () => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS_CERT: client.cert, BERTH_TEMPORAL_TLS_KEY: other.key }),
    'BERTH_TEMPORAL_TLS_KEY',
    /is not the private key of the certificate in BERTH_TEMPORAL_TLS_CERT/,
  );
});

test('TLS files: missing, a directory or not PEM are refused at load, naming the variable and the path', async () => {
  const missing = join(pki.dir, 'nope.crt');
  refused(() => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS_CA: missing }), 'BERTH_TEMPORAL_TLS_CA', new RegExp(`cannot read "${missing}": no such file`));
  const dir = join(pki.dir, 'a-directory');
  await mkdir(dir, { recursive: true });
  refused(() => loadApiConfig({ ...minimal, BERTH_STREAMS_TLS_CA: dir }), 'BERTH_STREAMS_TLS_CA', /: it is a directory/);
  const text = join(pki.dir, 'not-pem.txt');
  await writeFile(text, 'hello\n');
  refused(() => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS_CA: text }), 'BERTH_TEMPORAL_TLS_CA', /holds no PEM certificate/);
  const broken = join(pki.dir, 'broken.crt');
  await writeFile(broken, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
  refused(() => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS_CA: broken }), 'BERTH_TEMPORAL_TLS_CA', /holds no certificate that can be parsed/);
  // A certificate where the key belongs (the files swapped).
  refused(
    () => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS_CERT: client.cert, BERTH_TEMPORAL_TLS_KEY: client.cert }),
    'BERTH_TEMPORAL_TLS_KEY',
    /holds no PEM private key/,
  );
});

/**
 * The API's configuration loaded as a process loads it (loadOrExit) in a child process; as
 * `nobody` when this runs as root, for whom every file is readable.
 */
async function loadInChild(env: Record<string, string>) {
  const script = `import { loadOrExit, loadApiConfig } from './core/config.ts'; loadOrExit(loadApiConfig); console.log('loaded');`;
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  return promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: join(import.meta.dirname, '..', '..'),
    env: { ...minimal, PATH: process.env.PATH, ...env },
    ...asNobody,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

test('a refused TLS setting stops the process with one line naming the variable, no stack trace (exit 78)', async () => {
  const result = await loadInChild({ BERTH_TEMPORAL_TLS_CERT: client.cert });
  assert.equal(result.code, 78);
  assert.equal(result.stderr, 'berth: invalid configuration: BERTH_TEMPORAL_TLS_KEY: is required with BERTH_TEMPORAL_TLS_CERT (the certificate\'s private key)\n');
});

test('a TLS file its process may not read: permission denied, naming the variable (exit 78)', async () => {
  const dir = join(pki.dir, 'locked');
  await mkdir(dir, { recursive: true });
  // The directories may be entered; the file may not be read by the child (nobody, or this user with mode 000).
  await chmod(dir, 0o711);
  const readable = join(dir, 'ca.crt');
  await writeFile(readable, pem.ca!, { mode: 0o644 });
  const locked = join(dir, 'locked.crt');
  await writeFile(locked, pem.ca!);
  await chmod(locked, process.getuid?.() === 0 ? 0o600 : 0o000);
  const control = await loadInChild({ BERTH_TEMPORAL_TLS_CA: readable });
  assert.equal(control.code, 0, `the same CA, readable, is accepted: ${control.stderr}`);
  assert.equal(control.stdout, 'loaded\n');
  const result = await loadInChild({ BERTH_TEMPORAL_TLS_CA: locked });
  assert.equal(result.code, 78);
  assert.equal(result.stderr, `berth: invalid configuration: BERTH_TEMPORAL_TLS_CA: cannot read "${locked}": permission denied\n`);
});

test('Docker: tcp:// without TLS is refused unless BERTH_DOCKER_ALLOW_PLAIN_TCP=true', () => {
  refused(() => loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_HOST: 'tcp://docker.example:2375' }), 'BERTH_DOCKER_HOST', /without TLS is refused: set BERTH_DOCKER_TLS_CA/);
  refused(
    () => loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_HOST: 'tcp://docker.example:2375', BERTH_DOCKER_ALLOW_PLAIN_TCP: 'false' }),
    'BERTH_DOCKER_HOST',
    /without TLS is refused/,
  );
  refused(() => loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_ALLOW_PLAIN_TCP: 'sure' }), 'BERTH_DOCKER_ALLOW_PLAIN_TCP', /must be true or false/);
  const plain = loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_HOST: 'tcp://docker.example:2375', BERTH_DOCKER_ALLOW_PLAIN_TCP: 'true' });
  assert.deepEqual(plain.docker, { endpoint: 'tcp://docker.example:2375', tls: null });
  refused(() => loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_HOST: 'tcp://:2376', BERTH_DOCKER_ALLOW_PLAIN_TCP: 'true' }), 'BERTH_DOCKER_HOST', /must be tcp:\/\/host:port/);
});

test('Docker: tcp:// with mutual TLS needs all three files; a unix socket takes none', () => {
  const tls = { BERTH_DOCKER_TLS_CA: pki.ca.cert, BERTH_DOCKER_TLS_CERT: client.cert, BERTH_DOCKER_TLS_KEY: client.key };
  const config = loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_HOST: 'tcp://docker.example:2376', ...tls });
  assert.deepEqual(config.docker, { endpoint: 'tcp://docker.example:2376', tls: { ca: pem.ca, cert: pem.cert, key: pem.key } });
  refused(
    () => loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_HOST: 'tcp://docker.example:2376', BERTH_DOCKER_TLS_CA: pki.ca.cert }),
    'BERTH_DOCKER_TLS_CERT',
    /is required with BERTH_DOCKER_TLS_CA/,
  );
  refused(
    () => loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_HOST: 'tcp://docker.example:2376', BERTH_DOCKER_TLS_CA: pki.ca.cert, BERTH_DOCKER_TLS_CERT: client.cert }),
    'BERTH_DOCKER_TLS_KEY',
    /is required with BERTH_DOCKER_TLS_CA and BERTH_DOCKER_TLS_CERT/,
  );
  refused(
    () => loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_HOST: 'tcp://docker.example:2376', ...tls, BERTH_DOCKER_TLS_KEY: other.key }),
    'BERTH_DOCKER_TLS_KEY',
    /is not the private key of the certificate in BERTH_DOCKER_TLS_CERT/,
  );
  refused(() => loadHostWorkerConfig({ ...hostMinimal, BERTH_DOCKER_TLS_CA: pki.ca.cert }), 'BERTH_DOCKER_TLS_CA', /applies to a tcp:\/\/ BERTH_DOCKER_HOST only/);
});

test('Docker: every client gets the TLS options, the save-gzip thread\'s too (plain data it can be sent)', () => {
  const tls = { ca: pem.ca!, cert: pem.cert!, key: pem.key! } as const;
  assert.deepEqual(
    { ...dockerConnectionFor('tcp://docker.example', tls) },
    { socketPath: undefined, host: 'docker.example', port: 2376, protocol: 'https', ca: pem.ca, cert: pem.cert, key: pem.key },
  );
  assert.equal(dockerConnectionFor('tcp://docker.example', null).port, 2375);
  assert.equal(dockerConnectionFor('tcp://docker.example', null).protocol, 'http');
  assert.equal(dockerConnectionFor('unix:///run/docker.sock').socketPath, '/run/docker.sock');

  const docker = dockerClient({ endpoint: 'tcp://docker.example:2376', tls });
  const modem = docker.modem as unknown as { protocol: string; ca: string; cert: string; key: string };
  assert.equal(modem.protocol, 'https');
  assert.deepEqual([modem.ca, modem.cert, modem.key], [pem.ca, pem.cert, pem.key]);
  // What the DCU activity hands the compression thread: cloned into it as a worker_threads message is.
  const forThread = structuredClone(dockerConnection(docker));
  assert.deepEqual(
    { host: forThread.host, port: forThread.port, protocol: forThread.protocol, ca: forThread.ca, cert: forThread.cert, key: forThread.key },
    { host: 'docker.example', port: 2376, protocol: 'https', ca: pem.ca, cert: pem.cert, key: pem.key },
  );
  const plain = structuredClone(dockerConnection(dockerClient({ endpoint: 'tcp://docker.example:2375', tls: null })));
  assert.equal(plain.protocol, 'http');
  assert.equal(plain.ca, undefined);
  assert.equal(structuredClone(dockerConnection(dockerClient({ endpoint: 'unix:///run/docker.sock', tls: null }))).socketPath, '/run/docker.sock');
});

test('streams: a non-loopback BERTH_STREAMS_HOST without TLS is refused unless BERTH_STREAMS_ALLOW_PLAIN=true', () => {
  for (const host of ['0.0.0.0', '10.0.0.5', '::', 'worker-a.internal']) {
    refused(() => loadHostWorkerConfig({ ...hostMinimal, BERTH_STREAMS_HOST: host }), 'BERTH_STREAMS_HOST', /is not a loopback address/);
  }
  const allowed = loadHostWorkerConfig({ ...hostMinimal, BERTH_STREAMS_HOST: '0.0.0.0', BERTH_STREAMS_ADVERTISE_HOST: '10.0.0.5', BERTH_STREAMS_ALLOW_PLAIN: 'true' });
  assert.deepEqual(allowed.streams, { host: '0.0.0.0', port: 0, advertiseHost: '10.0.0.5', tls: null });
  for (const host of ['127.0.0.1', '127.3.2.1', '::1', 'localhost']) {
    assert.equal(loadHostWorkerConfig({ ...hostMinimal, BERTH_STREAMS_HOST: host }).streams.tls, null, host);
  }
  assert.deepEqual(
    ['127.0.0.1', '127.255.0.9', '::1', '[::1]', '::ffff:127.0.0.1', 'LOCALHOST', '0.0.0.0', '128.0.0.1', '::', '10.1.2.3', 'example.com'].map(isLoopbackHost),
    [true, true, true, true, true, true, false, false, false, false, false],
  );
});

test('streams: with a certificate and key the endpoint serves TLS; one without the other is refused; the API reads its CA', () => {
  const tls = { BERTH_STREAMS_TLS_CERT: client.cert, BERTH_STREAMS_TLS_KEY: client.key };
  const config = loadHostWorkerConfig({ ...hostMinimal, BERTH_STREAMS_HOST: '0.0.0.0', BERTH_STREAMS_ADVERTISE_HOST: 'berth.test', ...tls });
  assert.deepEqual(config.streams, { host: '0.0.0.0', port: 0, advertiseHost: 'berth.test', tls: { cert: pem.cert, key: pem.key } });
  // The certificate must name the host the API is told to reach (the API would refuse it otherwise).
  refused(() => loadHostWorkerConfig({ ...hostMinimal, BERTH_STREAMS_HOST: '0.0.0.0', ...tls }), 'BERTH_STREAMS_TLS_CERT', /is not valid for "0.0.0.0"/);
  refused(
    () => loadHostWorkerConfig({ ...hostMinimal, BERTH_STREAMS_HOST: '0.0.0.0', BERTH_STREAMS_ADVERTISE_HOST: 'other.test', ...tls }),
    'BERTH_STREAMS_TLS_CERT',
    /is not valid for "other.test", the host the API reaches this worker at/,
  );
  refused(() => loadHostWorkerConfig({ ...hostMinimal, BERTH_STREAMS_TLS_CERT: client.cert }), 'BERTH_STREAMS_TLS_KEY', /is required with BERTH_STREAMS_TLS_CERT/);
  refused(() => loadHostWorkerConfig({ ...hostMinimal, BERTH_STREAMS_TLS_KEY: client.key }), 'BERTH_STREAMS_TLS_CERT', /is required with BERTH_STREAMS_TLS_KEY/);
  assert.equal(loadApiConfig({ ...minimal, BERTH_STREAMS_TLS_CA: pki.ca.cert }).streamsCa, pem.ca);
});

test('the Temporal API key and the TLS private keys never reach a log line, nor a configuration error', () => {
  const apiKey = 'tcld-0123456789abcdefSECRET';
  const config = loadHostWorkerConfig({
    ...hostMinimal,
    BERTH_TEMPORAL_API_KEY: apiKey,
    BERTH_TEMPORAL_TLS_CERT: client.cert,
    BERTH_TEMPORAL_TLS_KEY: client.key,
    BERTH_STREAMS_TLS_CERT: client.cert,
    BERTH_STREAMS_TLS_KEY: client.key,
    BERTH_STREAMS_ADVERTISE_HOST: 'berth.test',
  });
  // A configuration logged whole, as pino writes it (JSON, then core/logger.ts's redaction).
  const line = redactJsonLine(JSON.stringify({ msg: 'config', config }));
  assert.ok(!line.includes(apiKey), 'the API key is redacted');
  assert.match(line, new RegExp(`"apiKey":"${REDACTED.replace(/[[\]]/g, '\\$&')}"`));
  const keyBody = pem.key!.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  assert.ok(keyBody.length > 20 && !line.includes(keyBody.slice(0, 20)), 'no line of a private key is left');
  assert.ok(line.includes('-----BEGIN PRIVATE KEY-----'), 'what was there is still recognisable');
  assert.ok(line.includes(JSON.stringify(pem.cert).slice(1, 60)), 'certificates are not secrets: they stay');
  // As a message (an error's text, a header logged in plain), the same.
  assert.ok(!redactJsonLine(JSON.stringify({ msg: `sent Bearer ${apiKey}` })).includes(apiKey));
  // A refused setting never echoes the key.
  assert.throws(
    () => loadApiConfig({ ...minimal, BERTH_TEMPORAL_TLS: 'false', BERTH_TEMPORAL_API_KEY: apiKey }),
    (error: Error) => !error.message.includes(apiKey) && !String(error.stack).includes(apiKey),
  );
});
