/**
 * Docker over TCP with mutual TLS, as `dockerd --tlsverify` runs it: a stand-in daemon of this
 * test's (HTTPS on 127.0.0.1, client certificates required, certificates from a throwaway CA)
 * answers the version and one image's `docker save`. The host worker's client and the DCU
 * compression thread's (which builds its own from what the activity hands it) both get through
 * with the settings; without the right CA or certificate they do not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import { loadHostWorkerConfig } from '../../core/config.js';
import { dockerClient } from '../../activities/docker-client.js';
import { dockerConnection, saveGzip } from '../../activities/save-gzip.js';
import { throwawayPki, type CertFiles, type Pki } from '../support/tls.js';

const hostBase = {
  BERTH_DATABASE_URL: 'postgres://berth:pw@127.0.0.1:5432/berth',
  BERTH_INTERNAL_TOKEN: 'internal-token-0123456789',
  BERTH_HOST_ID: 'host-tls',
  BERTH_MINIO_ACCESS_KEY: 'access',
  BERTH_MINIO_SECRET_KEY: 'secret-key',
};
type After = { after: (fn: () => unknown) => void };

/** The image "saved" by the stand-in daemon: bytes that do not compress to nothing. */
const TAR = Buffer.concat([randomBytes(256 * 1024), Buffer.alloc(256 * 1024, 7)]);

/** A daemon that demands a client certificate from `pki.ca`; records each request's client CN and path. */
async function standInDaemon(t: After, pki: Pki, server: CertFiles) {
  const requests: Array<{ cn: string; path: string }> = [];
  const daemon: Server = createServer(
    { cert: await readFile(server.cert), key: await readFile(server.key), ca: await readFile(pki.ca.cert), requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const cn = String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '');
      requests.push({ cn, path: req.url ?? '' });
      if (req.url === '/version') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Version: 'stand-in-tls' }));
      if (/^\/images\/[^/]+\/get$/.test(req.url ?? '')) return void res.writeHead(200, { 'content-type': 'application/x-tar' }).end(TAR);
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'not here' }));
    },
  );
  daemon.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => daemon.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    daemon.closeAllConnections();
    return new Promise<void>((resolve) => daemon.close(() => resolve()));
  });
  return { endpoint: `tcp://127.0.0.1:${(daemon.address() as AddressInfo).port}`, requests };
}

test('the host worker\'s Docker client and the compression thread\'s reach a --tlsverify daemon with the settings', async (t) => {
  const pki = await throwawayPki(t);
  const daemonCert = await pki.leaf('daemon', ['IP:127.0.0.1']);
  const berth = await pki.leaf('berth-host', ['DNS:berth.test']);
  const daemon = await standInDaemon(t, pki, daemonCert);
  const config = loadHostWorkerConfig({
    ...hostBase,
    BERTH_DOCKER_HOST: daemon.endpoint,
    BERTH_DOCKER_TLS_CA: pki.ca.cert,
    BERTH_DOCKER_TLS_CERT: berth.cert,
    BERTH_DOCKER_TLS_KEY: berth.key,
  });

  // The host worker's client (workers/host.ts).
  const docker = dockerClient(config.docker);
  assert.equal((await docker.version()).Version, 'stand-in-tls');

  // The DCU compress phase: a thread with a client of its own, from what the activity hands it.
  const path = join(pki.dir, 'image.tar.gz');
  const archive = await saveGzip({ docker: dockerConnection(docker), reference: 'busybox:latest', path, level: 1, progressEveryMs: 1000 });
  assert.equal(archive.sizeBytes, TAR.length);
  const written = await readFile(path);
  assert.equal(archive.sha256, createHash('sha256').update(written).digest('hex'));
  assert.ok(gunzipSync(written).equals(TAR), 'the archive is the image the daemon sent');

  assert.deepEqual(
    daemon.requests.map((r) => [r.cn, r.path]),
    [
      ['berth-host', '/version'],
      ['berth-host', '/images/busybox:latest/get'],
    ],
    'both clients presented the certificate from the settings',
  );
});

test('trusting another CA, or in plain TCP, no request reaches the daemon', async (t) => {
  const pki = await throwawayPki(t);
  const daemonCert = await pki.leaf('daemon', ['IP:127.0.0.1']);
  const berth = await pki.leaf('berth-host', ['DNS:berth.test']);
  const daemon = await standInDaemon(t, pki, daemonCert);
  const env = { ...hostBase, BERTH_DOCKER_HOST: daemon.endpoint, BERTH_DOCKER_TLS_CA: pki.ca.cert, BERTH_DOCKER_TLS_CERT: berth.cert, BERTH_DOCKER_TLS_KEY: berth.key };

  // Trusting another CA: the daemon is not believed (and never sees a request).
  const distrustful = dockerClient(loadHostWorkerConfig({ ...env, BERTH_DOCKER_TLS_CA: pki.otherCa.cert }).docker);
  // (The daemon sends its CA along with its certificate, as a server with client verification does: a self-signed root in the chain.)
  await assert.rejects(distrustful.version(), (error: NodeJS.ErrnoException) => {
    assert.equal(error.code, 'SELF_SIGNED_CERT_IN_CHAIN');
    return true;
  });
  const thread = saveGzip({ docker: dockerConnection(distrustful), reference: 'busybox:latest', path: join(pki.dir, 'no.tar.gz'), level: 1, progressEveryMs: 1000 });
  await assert.rejects(thread, /self-signed certificate in certificate chain/);

  // Plain TCP to the TLS daemon (BERTH_DOCKER_ALLOW_PLAIN_TCP=true and no TLS files): refused.
  const plain = dockerClient(loadHostWorkerConfig({ ...hostBase, BERTH_DOCKER_HOST: daemon.endpoint, BERTH_DOCKER_ALLOW_PLAIN_TCP: 'true' }).docker);
  await assert.rejects(plain.version());
  assert.deepEqual(daemon.requests, [], 'no request reached the daemon');

  // The right settings, for contrast: the same daemon answers.
  assert.equal((await dockerClient(loadHostWorkerConfig(env).docker).version()).Version, 'stand-in-tls');
  assert.equal(daemon.requests.length, 1);
});
