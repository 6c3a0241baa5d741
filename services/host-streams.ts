/**
 * The API's client for host workers' log and stats endpoints (workers/host-streams.ts): a GET
 * of `<stream_url><path>` with BERTH_INTERNAL_TOKEN. A host worker with a certificate advertises
 * an https:// URL, and its certificate is checked against BERTH_STREAMS_TLS_CA (else the
 * system's CAs); the native stack's loopback workers advertise http:// and are read in plain.
 *
 * node:http(s) rather than fetch: Node's fetch takes a custom CA only through an undici
 * dispatcher, and undici is not a dependency of Berth. The body is a Node stream; aborting
 * `signal` destroys the request and its socket, which the host worker sees as the client gone.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** Why a host's endpoint could not be read: refused or unreachable, its certificate not accepted, or no answer in time. */
export type HostStreamFailure = 'unreachable' | 'certificate' | 'timeout';

export class HostStreamError extends Error {
  override name = 'HostStreamError';
  constructor(
    readonly reason: HostStreamFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface HostStreamResponse {
  status: number;
  body: IncomingMessage;
}

/** OpenSSL's and Node's codes for a certificate that was not accepted. */
const CERTIFICATE_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** How long a host has to answer (its headers: a followed log's come at once) before the request fails. */
const RESPONSE_TIMEOUT_MS = 30_000;

export function createHostStreamClient(opts: {
  token: string;
  /** PEM: the CA bundle host workers' certificates are checked against; null: the system's CAs. */
  ca: string | null;
  responseTimeoutMs?: number;
}) {
  const responseTimeoutMs = opts.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS;
  const agents = {
    'http:': new HttpAgent({ keepAlive: true }),
    'https:': new HttpsAgent({ keepAlive: true, ...(opts.ca !== null ? { ca: opts.ca } : {}) }),
  };
  const authorization = `Bearer ${opts.token}`;

  /** GETs `path` (with its query) from the host worker at `streamUrl`; rejects with HostStreamError, or with the abort. */
  function get(streamUrl: string, path: string, signal?: AbortSignal): Promise<HostStreamResponse> {
    return attempt(streamUrl, path, signal, true);
  }

  /**
   * One GET. A kept-alive connection the host closed as the request went out (its idle timeout)
   * resets it before any answer: with `retryReused`, that GET goes again once on a new connection,
   * as Node's documentation advises (a GET here changes nothing on the host).
   */
  function attempt(streamUrl: string, path: string, signal: AbortSignal | undefined, retryReused: boolean): Promise<HostStreamResponse> {
    let url: URL;
    try {
      url = new URL(`${streamUrl}${path}`);
    } catch {
      return Promise.reject(new HostStreamError('unreachable', `the host's stream URL "${streamUrl}" is not a URL`));
    }
    const protocol = url.protocol;
    if (protocol !== 'http:' && protocol !== 'https:') {
      return Promise.reject(new HostStreamError('unreachable', `the host's stream URL uses ${protocol}, not http: or https:`));
    }
    return new Promise<HostStreamResponse>((resolve, reject) => {
      const send = protocol === 'https:' ? httpsRequest : httpRequest;
      let answered = false;
      const req = send(url, { method: 'GET', agent: agents[protocol], headers: { authorization }, ...(signal ? { signal } : {}) }, (res) => {
        answered = true;
        req.setTimeout(0);
        resolve({ status: res.statusCode ?? 0, body: res });
      });
      req.setTimeout(responseTimeoutMs, () =>
        req.destroy(new HostStreamError('timeout', `the host at ${url.origin} did not answer within ${responseTimeoutMs / 1000} s`)),
      );
      // Not once: an abort after the answer is an error of the request too, and must not go unheard.
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (error instanceof HostStreamError || signal?.aborted) return reject(error);
        if (retryReused && !answered && req.reusedSocket && error.code === 'ECONNRESET') {
          return resolve(attempt(streamUrl, path, signal, false));
        }
        const reason = CERTIFICATE_ERRORS.has(error.code ?? '') ? 'certificate' : 'unreachable';
        const what = reason === 'certificate' ? 'its certificate was not accepted' : 'it could not be reached';
        reject(new HostStreamError(reason, `the host at ${url.origin}: ${what} (${error.code ?? error.message})`, { cause: error }));
      });
      req.end();
    });
  }

  return {
    get,
    /** Closes the idle kept-alive connections (the API's shutdown). */
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}

export type HostStreamClient = ReturnType<typeof createHostStreamClient>;
