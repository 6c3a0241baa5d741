/**
 * A loopback gRPC proxy (HTTP/2 in plain text) in front of Temporal's frontend that makes a
 * start's outcome ambiguous for real: for the calls of one method, it either
 * - `answerLate`: sends the call on to Temporal, waits for Temporal's answer (the run is
 *   started), then answers the client DEADLINE_EXCEEDED, as a server whose own deadline passed
 *   after it did the work; or
 * - `hold`: sends nothing on and answers DEADLINE_EXCEEDED, keeping the first call it held;
 *   `sendHeld()` later sends that call to Temporal as it was: a start that lands late.
 * Every other call passes through untouched (long polls included). For in-process apps of
 * integration tests (buildTestApp's `temporalAddress`); never a mock: Temporal does the work.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

const SERVICE = '/temporal.api.workflowservice.v1.WorkflowService/';

export interface FaultRule {
  /** The WorkflowService method, e.g. StartWorkflowExecution or ExecuteMultiOperation. */
  method: string;
  mode: 'answerLate' | 'hold';
  /** How many calls of the method the rule takes; the later ones pass through. */
  times: number;
}

interface Held {
  headers: http2.OutgoingHttpHeaders;
  body: Buffer;
}

const DEADLINE_ANSWER = {
  ':status': 200,
  'content-type': 'application/grpc',
  'grpc-status': '4',
  'grpc-message': 'context deadline exceeded',
};

/** The request's headers as they go upstream: pseudo-headers other than the method and path dropped. */
function forwardHeaders(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith(':') && k !== ':method' && k !== ':path') continue;
    out[k] = v;
  }
  return out;
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

export async function startGrpcFaultProxy(upstreamAddress: string) {
  // One session to Temporal, opened again when Temporal closed it (an idle session, a GOAWAY).
  let session: http2.ClientHttp2Session | undefined;
  const upstream = () => {
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(`http://${upstreamAddress}`);
      session.on('error', () => undefined);
    }
    return session;
  };
  const rules: FaultRule[] = [];
  const seen: Record<string, number> = {};
  let held: Held | undefined;

  /** One unary call sent upstream, read to its end: its grpc-status (headers or trailers). */
  function callUpstream(headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const req = upstream().request(headers);
      let status: string | undefined;
      req.on('response', (h) => (status = (h['grpc-status'] as string | undefined) ?? status));
      req.on('trailers', (h) => (status = (h['grpc-status'] as string | undefined) ?? status));
      req.on('data', () => undefined);
      req.on('end', () => resolve(status));
      req.on('error', reject);
      req.end(body);
    });
  }

  function passThrough(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) {
    const req = upstream().request(forwardHeaders(headers));
    stream.pipe(req);
    stream.on('close', () => {
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
    });
    let trailers: http2.OutgoingHttpHeaders = {};
    req.on('response', (h) => {
      const { ':status': status, ...rest } = h;
      if (rest['grpc-status'] !== undefined) {
        // A trailers-only answer: the status is in the headers, and nothing follows.
        if (!stream.closed) stream.respond({ ':status': status, ...rest }, { endStream: true });
        req.resume();
        return;
      }
      if (stream.closed) return;
      stream.respond({ ':status': status, ...rest }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      req.pipe(stream);
    });
    req.on('trailers', (h) => (trailers = { ...h }));
    req.on('error', () => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
  }

  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path'] ?? '');
    const method = path.startsWith(SERVICE) ? path.slice(SERVICE.length) : '';
    const rule = rules.find((r) => r.method === method);
    const n = (seen[method] = (seen[method] ?? 0) + 1);
    if (!rule || n > rule.times) return passThrough(stream, headers);
    void (async () => {
      const body = await readAll(stream);
      const out = forwardHeaders(headers);
      if (rule.mode === 'answerLate') await callUpstream(out, body).catch(() => undefined);
      else held ??= { headers: out, body };
      if (!stream.closed) stream.respond(DEADLINE_ANSWER, { endStream: true });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    address: `127.0.0.1:${port}`,
    /** From now on, the next `times` calls of `method` are answered as the rule says (counted from now). */
    fault(rule: FaultRule) {
      seen[rule.method] = 0;
      rules.splice(0, rules.length, ...rules.filter((r) => r.method !== rule.method), rule);
    },
    /** How many calls of the method the proxy saw since its rule was set. */
    calls: (method: string) => seen[method] ?? 0,
    /** Sends the first held call to Temporal as it was; answers Temporal's grpc-status ('0': done). */
    async sendHeld(): Promise<string | undefined> {
      if (!held) throw new Error('no call was held');
      const { headers, body } = held;
      held = undefined;
      return callUpstream(headers, body);
    },
    async close() {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      session?.close();
    },
  };
}

export type GrpcFaultProxy = Awaited<ReturnType<typeof startGrpcFaultProxy>>;
