/**
 * The host worker's internal endpoint for the API: container logs and live stats,
 * read from this host's Docker only. Authenticated with BERTH_INTERNAL_TOKEN; the
 * API is its only client. When the API's request closes (its client left), the
 * Docker stream behind it is destroyed at once.
 *
 * Stats are shared: all viewers of one container read one Docker stats stream
 * (fan-out), opened by the first and destroyed when the last leaves. Each followed
 * log has its own Docker stream (its options are the viewer's). GET /streams counts
 * the Docker streams open by kind ({logs, stats}) and the viewers behind them, on the
 * whole host or, with ?container=<id>, for one container.
 *
 * With a certificate and key (BERTH_STREAMS_TLS_CERT, BERTH_STREAMS_TLS_KEY) it serves HTTPS and
 * advertises an https:// URL, which the API checks against BERTH_STREAMS_TLS_CA
 * (services/host-streams.ts); without, plain HTTP, on a loopback address unless
 * BERTH_STREAMS_ALLOW_PLAIN=true (core/config.ts).
 */
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { isIPv6 } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { dockerName } from '../core/container-labels.js';
import { FrameDecoder, toStatsSample, type DockerStats, type LogStream } from '../core/docker-frames.js';
import type { CertKeyPair } from '../core/config.js';

export function startStreamServer(opts: {
  docker: Docker;
  token: string;
  host: string;
  port: number;
  /** The address the API reaches this server at. */
  advertiseHost: string;
  /** PEM certificate and key: serve HTTPS. */
  tls?: CertKeyPair | null;
  logger: Logger;
}) {
  const { docker, logger } = opts;
  /** Docker streams open, by kind. */
  const open = { logs: 0, stats: 0 };
  /** API requests reading them (a followed log has a Docker stream of its own). */
  const viewers = { stats: 0 };
  /** The same counts for each container that has any. */
  const byContainer = new Map<string, { logs: number; stats: number; statsViewers: number }>();
  const count = (id: string, what: 'logs' | 'stats' | 'statsViewers', delta: 1 | -1) => {
    const counts = byContainer.get(id) ?? { logs: 0, stats: 0, statsViewers: 0 };
    counts[what] += delta;
    if (counts.logs === 0 && counts.stats === 0 && counts.statsViewers === 0) byContainer.delete(id);
    else byContainer.set(id, counts);
  };
  const countsBody = (containerId: string | null) => {
    if (containerId === null) return { ...open, viewers: { logs: open.logs, stats: viewers.stats } };
    const c = byContainer.get(containerId) ?? { logs: 0, stats: 0, statsViewers: 0 };
    return { logs: c.logs, stats: c.stats, viewers: { logs: c.logs, stats: c.statsViewers } };
  };
  const expected = Buffer.from(`Bearer ${opts.token}`);

  const authorized = (req: IncomingMessage) => {
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  function fail(res: ServerResponse, status: number, message: string) {
    if (res.headersSent) return void res.end();
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ message }));
  }

  /** Ties a Docker stream's life to the request's: the client leaving ends it. */
  function track(kind: keyof typeof open, id: string, req: IncomingMessage, res: ServerResponse, stream: Readable) {
    open[kind] += 1;
    count(id, kind, 1);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      open[kind] -= 1;
      count(id, kind, -1);
      stream.destroy();
      res.end();
    };
    req.on('close', close);
    res.on('close', close);
    stream.on('end', close);
    stream.on('error', close);
    return close;
  }

  async function logs(id: string, query: URLSearchParams, req: IncomingMessage, res: ServerResponse) {
    const container = docker.getContainer(dockerName(id));
    const info = await container.inspect();
    const follow = query.get('follow') === 'true';
    const only = query.get('stream') as LogStream | null;
    const tail = query.get('tail');
    const stream = (await container.logs({
      follow: follow as true,
      stdout: only !== 'stderr',
      stderr: only !== 'stdout',
      timestamps: query.get('timestamps') === 'true',
      ...(tail ? { tail: tail === 'all' ? undefined : Number(tail) } : {}),
      ...(query.get('since') ? { since: Number(query.get('since')) } : {}),
    })) as unknown as Readable | Buffer;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    // A quiet container sends nothing for a while: let the API know at once that the stream is open.
    if (!Buffer.isBuffer(stream)) res.flushHeaders();
    const write = (lines: Array<{ stream: LogStream; line: string }>) => {
      for (const { stream, line } of lines) res.write(only ? `${line}\n` : `[${stream}] ${line}\n`);
    };
    const decoder = new FrameDecoder();
    const tty = info.Config.Tty;
    const feed = (chunk: Buffer) => (tty ? write(chunk.toString('utf8').split('\n').filter(Boolean).map((line) => ({ stream: 'stdout' as const, line }))) : write(decoder.push(chunk)));
    if (Buffer.isBuffer(stream)) {
      feed(stream);
      write(decoder.end());
      return void res.end();
    }
    const close = track('logs', id, req, res, stream);
    stream.on('data', feed);
    stream.on('end', () => {
      write(decoder.end());
      close();
    });
  }

  /** One Docker stats stream per container, shared by its viewers. */
  interface StatsHub {
    id: string;
    /** Resolves once the Docker stream is open; rejects with Docker's error (404: no such container). */
    opened: Promise<void>;
    stream?: Readable;
    viewers: Set<ServerResponse>;
    /** Viewers waiting for `opened`. */
    waiting: number;
    /** The latest sample line, sent at once to a viewer who joins. */
    last?: string;
    ended: boolean;
  }
  const hubs = new Map<string, StatsHub>();

  function openHub(id: string): StatsHub {
    const hub: StatsHub = { id, opened: Promise.resolve(), viewers: new Set(), waiting: 0, ended: false };
    hubs.set(id, hub);
    hub.opened = (async () => {
      const stream = (await docker.getContainer(dockerName(id)).stats({ stream: true })) as unknown as Readable;
      hub.stream = stream;
      open.stats += 1;
      count(id, 'stats', 1);
      if (hub.ended) return void endHub(hub, true);
      let buffered = '';
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (!line) continue;
          let sample: string;
          try {
            sample = `${JSON.stringify(toStatsSample(JSON.parse(line) as DockerStats))}\n`;
          } catch (error) {
            logger.warn({ err: error, containerId: id }, 'unreadable stats sample');
            continue;
          }
          hub.last = sample;
          // A viewer that cannot keep up misses samples rather than piling them up.
          for (const res of hub.viewers) if (!res.writableNeedDrain) res.write(sample);
        }
      });
      const end = () => endHub(hub, true);
      stream.on('end', end);
      stream.on('error', end);
      stream.on('close', end);
    })();
    // Docker refused: the waiting viewers get its error, and the next viewer tries afresh.
    hub.opened.catch(() => endHub(hub, true));
    return hub;
  }

  /** Destroys the Docker stream and ends every viewer's response (`force`), or only if no one is left. */
  function endHub(hub: StatsHub, force: boolean) {
    if (hub.ended && !hub.stream) return;
    if (!force && (hub.viewers.size > 0 || hub.waiting > 0)) return;
    hub.ended = true;
    if (hubs.get(hub.id) === hub) hubs.delete(hub.id);
    if (hub.stream) {
      const stream = hub.stream;
      hub.stream = undefined;
      open.stats -= 1;
      count(hub.id, 'stats', -1);
      stream.destroy();
    }
    for (const res of hub.viewers) res.end();
  }

  async function stats(id: string, req: IncomingMessage, res: ServerResponse) {
    let gone = false;
    const left = () => {
      gone = true;
    };
    req.once('close', left);
    res.once('close', left);
    const live = hubs.get(id);
    const hub = live && !live.ended ? live : openHub(id);
    hub.waiting += 1;
    try {
      await hub.opened;
    } finally {
      hub.waiting -= 1;
    }
    if (gone) return void endHub(hub, false);
    if (hub.ended) return void res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end();
    res.writeHead(200, { 'content-type': 'application/x-ndjson' }).flushHeaders();
    hub.viewers.add(res);
    viewers.stats += 1;
    count(id, 'statsViewers', 1);
    if (hub.last) res.write(hub.last);
    let closed = false;
    const leave = () => {
      if (closed) return;
      closed = true;
      viewers.stats -= 1;
      count(id, 'statsViewers', -1);
      hub.viewers.delete(res);
      res.end();
      endHub(hub, false);
    };
    req.on('close', leave);
    res.on('close', leave);
  }

  const handle: RequestListener = (req, res) => {
    if (!authorized(req)) return fail(res, 401, 'unauthorized');
    const url = new URL(req.url ?? '/', 'http://internal');
    if (url.pathname === '/streams') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(countsBody(url.searchParams.get('container'))));
    }
    const match = /^\/containers\/([0-9a-f-]{36})\/(logs|stats)$/.exec(url.pathname);
    if (!match || req.method !== 'GET') return fail(res, 404, 'not found');
    const [, id, what] = match;
    const run = what === 'logs' ? logs(id!, url.searchParams, req, res) : stats(id!, req, res);
    run.catch((error: { statusCode?: number; message?: string }) => {
      if (error.statusCode === 404) return fail(res, 404, 'no such container on this host');
      logger.error({ err: error }, 'stream failed');
      fail(res, 502, error.message ?? 'docker error');
    });
  };
  const server = opts.tls ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, handle) : createServer(handle);
  const scheme = opts.tls ? 'https' : 'http';
  const advertised = isIPv6(opts.advertiseHost) ? `[${opts.advertiseHost}]` : opts.advertiseHost;

  return new Promise<{ url: string; close: () => Promise<void>; open: typeof open }>((resolve) => {
    server.listen(opts.port, opts.host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : opts.port;
      resolve({
        url: `${scheme}://${advertised}:${port}`,
        open,
        close: () =>
          new Promise((done) => {
            for (const hub of [...hubs.values()]) endHub(hub, true);
            server.close(() => done());
          }),
      });
    });
  });
}
