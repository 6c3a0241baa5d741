/**
 * Berth's Temporal connections with TLS, mutual TLS, a server name and an API key, made from
 * the settings as every process parses them (core/temporal.ts: the client; its options: the
 * workers' NativeConnection). The dev server has no TLS of its own: a TLS terminator of this
 * test's (mutual TLS, HTTP/2 by ALPN, certificates from a throwaway CA) forwards to a dev server
 * this test starts (the stack's temporal CLI, on a free port). The API key is checked by a stub
 * frontend that answers gRPC only to the right key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureServer, constants as h2, type ServerHttp2Session } from 'node:http2';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { loadApiConfig, type TemporalConfig } from '../../core/config.js';
import { connectTemporal, temporalConnectionOptions } from '../../core/temporal.js';
import { TEMPORAL_CLI } from '../support/stack.js';
import { throwawayPki, type CertFiles, type Pki } from '../support/tls.js';

const base = { BERTH_DATABASE_URL: 'postgres://berth:pw@127.0.0.1:5432/berth', BERTH_INTERNAL_TOKEN: 'internal-token-0123456789' };
type After = { after: (fn: () => unknown) => void };

/** The Temporal settings a process parses from these variables. */
const temporalFrom = (env: Record<string, string>): TemporalConfig => loadApiConfig({ ...base, ...env }).temporal;

/** A failing connection gives up after 3 s instead of the client's default 10. */
const QUICK = { connectTimeout: '3s' } as const;

/** Mutual TLS terminated here, then the bytes (HTTP/2) relayed to `target`; records each client's certificate CN. */
async function tlsTerminator(t: After, target: AddressInfo, server: CertFiles, pki: Pki) {
  const clients: string[] = [];
  const terminator = createTlsServer(
    {
      cert: await readFile(server.cert),
      key: await readFile(server.key),
      ca: await readFile(pki.ca.cert),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket: TLSSocket) => {
      const cert = socket.getPeerCertificate();
      clients.push(String(cert.subject?.CN ?? ''));
      const upstream = netConnect(target.port, target.address);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close);
      upstream.on('error', close);
      socket.on('close', close);
      upstream.on('close', close);
    },
  );
  terminator.on('tlsClientError', () => undefined);
  // Refused connections' channels may linger in the SDK: closing ends them, not waits for them.
  const sockets = new Set<TLSSocket>();
  terminator.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => terminator.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        terminator.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  );
  return { address: `127.0.0.1:${(terminator.address() as AddressInfo).port}`, clients };
}

const skip = existsSync(TEMPORAL_CLI) ? false : `no temporal CLI at ${TEMPORAL_CLI} (scripts/stack.sh installs it)`;

test('Temporal over mutual TLS: the client and the workers\' NativeConnection connect with the settings; without them they do not', { skip }, async (t) => {
  const dev = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: TEMPORAL_CLI }, ip: '127.0.0.1' } });
  t.after(() => dev.teardown());
  const [host, port] = dev.address.split(':');
  const pki = await throwawayPki(t);
  // The frontend's certificate names temporal.test only: 127.0.0.1 is checked against it, and fails, unless the server name says otherwise.
  const frontend = await pki.leaf('frontend', ['DNS:temporal.test']);
  const berth = await pki.leaf('berth-client', ['DNS:berth.test']);
  const proxy = await tlsTerminator(t, { address: host!, port: Number(port), family: 'IPv4' }, frontend, pki);

  const tlsEnv = {
    BERTH_TEMPORAL_ADDRESS: proxy.address,
    BERTH_TEMPORAL_TLS_CA: pki.ca.cert,
    BERTH_TEMPORAL_TLS_CERT: berth.cert,
    BERTH_TEMPORAL_TLS_KEY: berth.key,
    BERTH_TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  };
  const config = temporalFrom(tlsEnv);

  // The API's client (core/temporal.ts), as api/server.ts and the workers make it.
  const client = await connectTemporal(config);
  t.after(() => client.connection.close());
  const namespace = await client.workflowService.describeNamespace({ namespace: 'default' });
  assert.equal(namespace.namespaceInfo?.name, 'default');

  // The workers' connection (workers/run-worker.ts passes the same options).
  const native = await NativeConnection.connect(temporalConnectionOptions(config));
  t.after(() => native.close());
  const info = await native.workflowService.getSystemInfo({});
  assert.ok(info.serverVersion, 'the dev server answered through TLS');
  assert.ok(proxy.clients.length >= 2 && proxy.clients.every((cn) => cn === 'berth-client'), `client certificates: ${proxy.clients.join(', ')}`);

  // Each part of the settings is needed: without any of them no connection is made.
  const without = async (what: string, env: Record<string, string>) => {
    const options = temporalConnectionOptions(temporalFrom(env));
    await assert.rejects(
      Connection.connect({ ...options, ...QUICK }).then((c) => c.close()),
      `the client connected ${what}`,
    );
    await assert.rejects(
      NativeConnection.connect(options).then((c) => c.close()),
      `the workers' connection connected ${what}`,
    );
  };
  const { BERTH_TEMPORAL_TLS_CERT: _cert, BERTH_TEMPORAL_TLS_KEY: _key, ...noClientCert } = tlsEnv;
  await without('without a client certificate', noClientCert);
  const { BERTH_TEMPORAL_TLS_SERVER_NAME: _name, ...noServerName } = tlsEnv;
  await without('without the server name', noServerName);
  await without('trusting another CA', { ...tlsEnv, BERTH_TEMPORAL_TLS_CA: pki.otherCa.cert });
  await without('in plaintext', { BERTH_TEMPORAL_ADDRESS: proxy.address });
});

/**
 * A stand-in frontend over TLS (HTTP/2, gRPC framing): it answers any call with an empty
 * message when `authorization` is `Bearer <key>`, else UNAUTHENTICATED; records what it got.
 */
async function apiKeyFrontend(t: After, key: string, server: CertFiles) {
  const seen: string[] = [];
  const frontend = createSecureServer({ cert: await readFile(server.cert), key: await readFile(server.key), ALPNProtocols: ['h2'] });
  frontend.on('stream', (stream, headers) => {
    const authorization = String(headers.authorization ?? '');
    seen.push(authorization);
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    if (authorization !== `Bearer ${key}`) {
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'bad api key' }, { endStream: true });
      return;
    }
    stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    // One message, empty: the compressed flag and a length of 0.
    stream.end(Buffer.alloc(5));
  });
  frontend.on('sessionError', () => undefined);
  // The refused connection's channel may linger in the SDK: closing ends the sessions, not waits for them.
  const sessions = new Set<ServerHttp2Session>();
  frontend.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => frontend.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        frontend.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  );
  return { address: `127.0.0.1:${(frontend.address() as AddressInfo).port}`, seen };
}

test('BERTH_TEMPORAL_API_KEY is sent as a bearer token, over TLS, by the client and the workers\' connection', async (t) => {
  const pki = await throwawayPki(t);
  const cert = await pki.leaf('frontend', ['IP:127.0.0.1']);
  const key = `tcld-${crypto.randomUUID()}`;
  const frontend = await apiKeyFrontend(t, key, cert);
  const env = { BERTH_TEMPORAL_ADDRESS: frontend.address, BERTH_TEMPORAL_TLS_CA: pki.ca.cert, BERTH_TEMPORAL_API_KEY: key };

  const client = await connectTemporal(temporalFrom(env));
  t.after(() => client.connection.close());
  await client.workflowService.getSystemInfo({});
  assert.ok(frontend.seen.length > 0 && frontend.seen.every((a) => a === `Bearer ${key}`), 'every call of the client carried the key');

  const native = await NativeConnection.connect(temporalConnectionOptions(temporalFrom(env)));
  t.after(() => native.close());
  const before = frontend.seen.length;
  await native.workflowService.getSystemInfo({});
  assert.ok(frontend.seen.length > before && frontend.seen.slice(before).every((a) => a === `Bearer ${key}`), 'and every call of the workers\' connection');

  // Another key is refused by the stand-in: what it checks is what the settings give.
  const wrong = temporalConnectionOptions(temporalFrom({ ...env, BERTH_TEMPORAL_API_KEY: `${key}-other` }));
  await assert.rejects(Connection.connect({ ...wrong, ...QUICK }).then((c) => c.close()), (error: Error) => {
    assert.match(String(error.cause), /16 UNAUTHENTICATED: bad api key/);
    return true;
  });
  assert.equal(frontend.seen.at(-1), `Bearer ${key}-other`);
});
