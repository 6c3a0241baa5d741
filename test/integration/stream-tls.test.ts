/**
 * The host worker's log and stats endpoint over HTTPS, and the API reading it. A throwaway CA
 * and certificates (openssl, in a temporary directory); the host-streams server module started
 * on 127.0.0.1 with the settings a host worker parses, in front of a stand-in Docker that answers
 * one container's log (no daemon needed: what is tested is the TLS layer); the API's route
 * plugin (api/routes/containers/streams.ts) in an app of its own, with the client the API makes
 * from its settings. Nothing of the stack is used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import WebSocket from 'ws';
import Fastify from 'fastify';
import websocket from '@fastify/websocket';
import type Docker from 'dockerode';
import { pino } from 'pino';
import { loadApiConfig, loadHostWorkerConfig } from '../../core/config.js';
import { startStreamServer } from '../../workers/host-streams.js';
import { HostStreamError, createHostStreamClient, type HostStreamClient } from '../../services/host-streams.js';
import problems from '../../api/plugins/problems.js';
import auth from '../../api/plugins/auth.js';
import { validatorFactory } from '../../api/plugins/input.js';
import { Problem } from '../../api/schemas.js';
import containerStreamRoutes from '../../api/routes/containers/streams.js';
import type { PublicUser } from '../../services/users.js';
import type { AuthService } from '../../services/auth.js';
import { throwawayPki } from '../support/tls.js';
import { eventually } from '../support/wait.js';

const TOKEN = `internal-${randomUUID()}`;
const base = { BERTH_DATABASE_URL: 'postgres://berth:pw@127.0.0.1:5432/berth', BERTH_INTERNAL_TOKEN: TOKEN };
const hostBase = { ...base, BERTH_HOST_ID: 'host-tls', BERTH_MINIO_ACCESS_KEY: 'access', BERTH_MINIO_SECRET_KEY: 'secret-key' };
const CONTAINER = randomUUID();
const LOG_LINE = `hello over tls ${randomUUID()}`;

/**
 * A Docker that knows one container (a TTY's: plain lines). Its log so far is LOG_LINE; a
 * followed log and a stats stream are streams the test writes to (`live`).
 */
function standInDocker() {
  const live: { logs: PassThrough[]; stats: PassThrough[] } = { logs: [], stats: [] };
  const opened = (kind: keyof typeof live) => {
    const stream = new PassThrough();
    live[kind].push(stream);
    return stream;
  };
  const docker = {
    getContainer: () => ({
      inspect: async () => ({ Config: { Tty: true } }),
      logs: async (options: { follow?: boolean }) => (options.follow ? opened('logs') : Buffer.from(`${LOG_LINE}\n`)),
      stats: async () => opened('stats'),
    }),
  } as unknown as Docker;
  return { docker, live };
}

/** A host worker's stream server as host.ts starts it: from the settings it parses. */
async function hostStreams(t: { after: (fn: () => unknown) => void }, env: Record<string, string>, docker = standInDocker().docker) {
  const config = loadHostWorkerConfig({ ...hostBase, ...env });
  const server = await startStreamServer({ docker, token: config.internalToken, logger: pino({ level: 'silent' }), ...config.streams });
  t.after(() => server.close());
  return server;
}

/** The API's client, as api/app.ts makes it from the API's settings. */
function apiClient(t: { after: (fn: () => unknown) => void }, env: Record<string, string>): HostStreamClient {
  const config = loadApiConfig({ ...base, ...env });
  const client = createHostStreamClient({ token: config.internalToken, ca: config.streamsCa });
  t.after(() => client.close());
  return client;
}

async function text(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** A raw GET with Node's https (not Berth's client), trusting `ca`, with the given headers. */
function rawGet(url: string, ca: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers, agent: false }, (res) => {
      text(res).then((body) => resolve({ status: res.statusCode ?? 0, body }), reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The API's container stream routes in an app of their own: a caller who sees CONTAINER on a
 * host that is up at `streamUrl`, and the stream client given. Answers the app's address.
 */
async function apiWithRoutes(t: { after: (fn: () => unknown) => void }, streamUrl: string, hostStreamClient: HostStreamClient, idleTimeoutMs = 60_000) {
  const user = { id: randomUUID(), username: 'tls-viewer', role: 'user' } as unknown as PublicUser;
  // forceCloseConnections: an aborted fetch has Node's fetch open a spare connection that sends nothing, which close() would wait out.
  const app = Fastify({ logger: false, forceCloseConnections: true, schemaController: { compilersFactory: { buildValidator: validatorFactory() } } });
  app.addSchema(Problem);
  await app.register(problems);
  const authStub: Pick<AuthService, 'authenticate' | 'redeemTicket'> = {
    authenticate: async (credential) => (credential === 'user-token' ? { kind: 'session', user, sessionId: 's' } : undefined),
    redeemTicket: async () => undefined,
  };
  await app.register(auth, { auth: authStub });
  await app.register(websocket);
  await app.register(containerStreamRoutes, {
    prefix: '/api/v1/containers',
    containers: { getVisible: async () => ({ id: CONTAINER, host: 'host-tls', name: 'tls-box', state: 'running', removedAt: null }) as never },
    hosts: { get: async () => ({ id: 'host-tls', streamUrl, status: 'up' }) as never },
    hostStreams: hostStreamClient,
    limits: { maxPerUser: 5, idleTimeoutMs },
    auth: { streamTicket: async () => ({ ticket: 'unused', expiresAt: new Date().toISOString() }) as never },
  });
  t.after(() => app.close());
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const get = (path: string, signal?: AbortSignal) =>
    fetch(`${address}/api/v1/containers/${CONTAINER}${path}`, { headers: { authorization: 'Bearer user-token' }, ...(signal ? { signal } : {}) });
  return Object.assign(get, { address });
}

test('the host worker serves HTTPS and advertises https://; the API with its CA reads logs through it', async (t) => {
  const pki = await throwawayPki(t);
  const cert = await pki.leaf('host-tls', ['IP:127.0.0.1']);
  const streams = await hostStreams(t, { BERTH_STREAMS_TLS_CERT: cert.cert, BERTH_STREAMS_TLS_KEY: cert.key });
  assert.match(streams.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the URL registered in hosts.stream_url is https://');

  const client = apiClient(t, { BERTH_STREAMS_TLS_CA: pki.ca.cert });
  const counts = await client.get(streams.url, '/streams');
  assert.equal(counts.status, 200);
  assert.equal((counts.body.socket as unknown as { encrypted?: boolean }).encrypted, true, 'the answer comes over TLS');
  assert.deepEqual(JSON.parse(await text(counts.body)), { logs: 0, stats: 0, viewers: { logs: 0, stats: 0 } });

  // Through the API's route: the user's request, relayed from the host over TLS.
  const get = await apiWithRoutes(t, streams.url, client);
  const res = await get('/logs');
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(await res.text(), `[stdout] ${LOG_LINE}\n`);
});

test('a host certificate from another CA is refused as a certificate error: the API answers 502 and keeps serving', async (t) => {
  const pki = await throwawayPki(t);
  const cert = await pki.leaf('host-tls', ['IP:127.0.0.1']);
  const streams = await hostStreams(t, { BERTH_STREAMS_TLS_CERT: cert.cert, BERTH_STREAMS_TLS_KEY: cert.key });

  const wrongCa = apiClient(t, { BERTH_STREAMS_TLS_CA: pki.otherCa.cert });
  const refused = await wrongCa.get(streams.url, '/streams').then(
    () => assert.fail('a certificate from another CA was accepted'),
    (error: unknown) => error,
  );
  assert.ok(refused instanceof HostStreamError, String(refused));
  assert.equal(refused.reason, 'certificate', refused.message);
  assert.equal((refused.cause as { code?: string }).code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  // Without BERTH_STREAMS_TLS_CA: the system's CAs, which never signed our throwaway CA.
  const systemCas = await apiClient(t, {}).get(streams.url, '/streams').catch((error: unknown) => error);
  assert.ok(systemCas instanceof HostStreamError && systemCas.reason === 'certificate', String(systemCas));
  // The certificate is checked against the name in the URL too: it names 127.0.0.1, not localhost.
  const right = apiClient(t, { BERTH_STREAMS_TLS_CA: pki.ca.cert });
  const otherName = await right.get(streams.url.replace('127.0.0.1', 'localhost'), '/streams').catch((error: unknown) => error);
  assert.ok(otherName instanceof HostStreamError && otherName.reason === 'certificate', String(otherName));
  assert.equal((otherName.cause as { code?: string }).code, 'ERR_TLS_CERT_ALTNAME_INVALID');

  // Through the API's route: a problem, twice (nothing crashed), while the right CA still gets through.
  const refusing = await apiWithRoutes(t, streams.url, wrongCa);
  for (let i = 0; i < 2; i++) {
    const res = await refusing('/logs');
    assert.equal(res.status, 502);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const problem = (await res.json()) as { type: string; status: number; detail: string };
    assert.equal(problem.type, '/problems/host-stream-failed');
    assert.equal(problem.status, 502);
    assert.equal(problem.detail, 'The host could not be reached.');
  }
  const download = await refusing('/logs/download');
  assert.equal(download.status, 502, 'the download route refuses it the same way');
  const accepting = await apiWithRoutes(t, streams.url, right);
  const ok = await accepting('/logs');
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), `[stdout] ${LOG_LINE}\n`);
});

test('over TLS too, a request without the internal token (or with another) is a 401; plain HTTP gets no answer', async (t) => {
  const pki = await throwawayPki(t);
  const cert = await pki.leaf('host-tls', ['IP:127.0.0.1']);
  const streams = await hostStreams(t, { BERTH_STREAMS_TLS_CERT: cert.cert, BERTH_STREAMS_TLS_KEY: cert.key });
  const ca = await readFile(pki.ca.cert, 'utf8');
  const path = `/containers/${CONTAINER}/logs`;

  const anonymous = await rawGet(`${streams.url}${path}`, ca, {});
  assert.equal(anonymous.status, 401);
  assert.deepEqual(JSON.parse(anonymous.body), { message: 'unauthorized' });
  assert.equal((await rawGet(`${streams.url}/streams`, ca, {})).status, 401);
  assert.equal((await rawGet(`${streams.url}${path}`, ca, { authorization: `Bearer ${TOKEN}x` })).status, 401);
  const authorized = await rawGet(`${streams.url}${path}`, ca, { authorization: `Bearer ${TOKEN}` });
  assert.equal(authorized.status, 200, 'the same request with the token gets through: the 401s were the token');
  assert.equal(authorized.body, `[stdout] ${LOG_LINE}\n`);

  // The TLS port does not speak plain HTTP, token or not.
  const plainUrl = streams.url.replace('https://', 'http://');
  const plain = await new Promise<unknown>((resolve) => {
    const req = httpRequest(`${plainUrl}/streams`, { headers: { authorization: `Bearer ${TOKEN}` }, agent: false }, (res) => resolve(res.statusCode));
    req.on('error', (error) => resolve(error));
    req.end();
  });
  assert.ok(plain instanceof Error, `plain HTTP got ${String(plain)}`);
});

test('without TLS settings the endpoint stays plain http:// on loopback, and the API still reads it (the native stack)', async (t) => {
  const pki = await throwawayPki(t);
  const streams = await hostStreams(t, {});
  assert.match(streams.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  // An API that has a CA for TLS hosts reads a plain loopback host as before.
  const client = apiClient(t, { BERTH_STREAMS_TLS_CA: pki.ca.cert });
  const get = await apiWithRoutes(t, streams.url, client);
  const res = await get('/logs');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), `[stdout] ${LOG_LINE}\n`);
  const counts = await client.get(streams.url, '/streams');
  assert.equal(counts.status, 200);
  assert.equal((counts.body.socket as unknown as { encrypted?: boolean }).encrypted, undefined, 'plain TCP');
  await text(counts.body);
});

test('over TLS, a followed log and a stats socket relay as they come; when the client leaves, the host\'s Docker streams are destroyed', async (t) => {
  const pki = await throwawayPki(t);
  const cert = await pki.leaf('host-tls', ['IP:127.0.0.1']);
  const { docker, live } = standInDocker();
  const streams = await hostStreams(t, { BERTH_STREAMS_TLS_CERT: cert.cert, BERTH_STREAMS_TLS_KEY: cert.key }, docker);
  const get = await apiWithRoutes(t, streams.url, apiClient(t, { BERTH_STREAMS_TLS_CA: pki.ca.cert }));

  // A followed log: the headers at once, then each line as the container writes it.
  const leaving = new AbortController();
  const res = await get('/logs?follow=true&tail=0', leaving.signal);
  assert.equal(res.status, 200);
  assert.equal(live.logs.length, 1, 'the host opened one Docker log stream');
  assert.equal(streams.open.logs, 1);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let received = '';
  for (const line of ['tick-1', 'tick-2']) {
    live.logs[0]!.write(`${line}\n`);
    while (!received.includes(`[stdout] ${line}\n`)) {
      const { done, value } = await reader.read();
      assert.ok(!done, `the log ended before ${line}`);
      received += decoder.decode(value, { stream: true });
    }
  }
  assert.equal(received, '[stdout] tick-1\n[stdout] tick-2\n');
  leaving.abort();
  await eventually('the host to destroy the followed log\'s Docker stream', async () => live.logs[0]!.destroyed && streams.open.logs === 0, 10);

  // A stats socket: Docker's samples, as JSON samples.
  const socket = new WebSocket(`${get.address.replace('http://', 'ws://')}/api/v1/containers/${CONTAINER}/stats`, { headers: { authorization: 'Bearer user-token' } });
  const first = new Promise<string>((resolve, reject) => {
    socket.once('message', (data: Buffer) => resolve(data.toString('utf8')));
    socket.once('close', (code: number, reason: Buffer) => reject(new Error(`closed ${code} ${reason.toString()}`)));
  });
  await eventually('the host to open the Docker stats stream', async () => live.stats.length === 1 && streams.open.stats === 1, 10);
  live.stats[0]!.write(`${JSON.stringify({ read: '2026-12-06T00:00:00Z', pids_stats: { current: 7 }, memory_stats: { usage: 1000, limit: 4000 } })}\n`);
  const sample = JSON.parse(await first) as { pids: number; memoryUsage: number; memoryLimit: number };
  assert.deepEqual([sample.pids, sample.memoryUsage, sample.memoryLimit], [7, 1000, 4000]);
  socket.close();
  await eventually('the host to destroy the Docker stats stream', async () => live.stats[0]!.destroyed && streams.open.stats === 0, 10);
});

test('over TLS, a followed log through which nothing comes ends cleanly at the idle timeout, and the host lets its Docker stream go', async (t) => {
  const pki = await throwawayPki(t);
  const cert = await pki.leaf('host-tls', ['IP:127.0.0.1']);
  const { docker, live } = standInDocker();
  const streams = await hostStreams(t, { BERTH_STREAMS_TLS_CERT: cert.cert, BERTH_STREAMS_TLS_KEY: cert.key }, docker);
  const get = await apiWithRoutes(t, streams.url, apiClient(t, { BERTH_STREAMS_TLS_CA: pki.ca.cert }), 1000);
  const started = Date.now();
  const res = await get('/logs?follow=true&tail=0');
  assert.equal(res.status, 200);
  live.logs[0]!.write('only-line\n');
  assert.equal(await res.text(), '[stdout] only-line\n', 'the body ends cleanly (no error) after the line');
  assert.ok(Date.now() - started >= 1000, 'not before the idle timeout');
  await eventually('the host to destroy the Docker stream', async () => live.logs[0]!.destroyed && streams.open.logs === 0, 10);
});
