/**
 * The console's API client: openapi-fetch over the types generated from the API's OpenAPI
 * document (schema.d.ts, `npm run web:api-types`), so a change of the API the console does
 * not follow fails `tsc -p web/tsconfig.json`.
 *
 * Authentication is the session cookie the API sets at sign-in (httpOnly: this code never sees
 * a token). Every request sends `X-Berth-CSRF: 1`, which the API requires of a cookie-
 * authenticated mutation, and the console's language as Accept-Language.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type ApiPath = keyof paths;

export const CSRF_HEADER = 'X-Berth-CSRF';

/** Headers every request of the console carries (fetch streams and downloads included). */
let language = 'en';
export function setRequestLanguage(lang: string): void {
  language = lang;
}
export function commonHeaders(): Record<string, string> {
  return { [CSRF_HEADER]: '1', 'Accept-Language': language };
}

/** Called when a request answers 401: the session is gone (signed out, expired or revoked). */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

const middleware: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(commonHeaders())) request.headers.set(name, value);
    return request;
  },
  onResponse({ response, schemaPath }) {
    if (response.status === 401 && schemaPath !== '/api/v1/auth/login') onUnauthorized();
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin, credentials: 'same-origin' });
api.use(middleware);

/** A request that failed: the problem's detail (or the DCU envelope's message) as its message. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** Seconds, from Retry-After (a throttled sign-in). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** What a failed response says: a problem's detail or title, a DCU error's message. */
function messageOf(body: unknown, response: Response): string {
  if (typeof body === 'object' && body !== null) {
    const { detail, title, message } = body as { detail?: unknown; title?: unknown; message?: unknown };
    if (typeof detail === 'string' && detail) return detail;
    if (typeof message === 'string' && message) return message;
    if (typeof title === 'string' && title) return title;
  }
  return `${response.status} ${response.statusText}`.trim();
}

function retryAfterOf(response: Response): number | undefined {
  const value = Number(response.headers.get('retry-after'));
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** Thrown when the network failed (no answer at all); the message is translated where shown. */
export class NetworkError extends Error {
  constructor() {
    super('network');
    this.name = 'NetworkError';
  }
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

/**
 * The data of a successful openapi-fetch call, or an ApiError with the problem's detail.
 * A DCU answer with a non-zero `code` in a 200 is an error too.
 */
export async function unwrap<D, E>(call: Promise<{ data?: D; error?: E; response: Response }>): Promise<D> {
  let result: { data?: D; error?: E; response: Response };
  try {
    result = await call;
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new NetworkError();
  }
  const { data, error, response } = result;
  if (!response.ok || error !== undefined) throw new ApiError(messageOf(error, response), response.status, retryAfterOf(response));
  const envelope = data as { code?: unknown } | undefined;
  if (typeof envelope?.code === 'number' && envelope.code !== 0) throw new ApiError(messageOf(data, response), response.status);
  return data as D;
}

/**
 * A path of the API with its parameters filled in, for what openapi-fetch does not fetch
 * (event streams, followed logs, downloads, the WebSocket): typed, so a renamed path fails tsc.
 */
export function apiUrl<P extends ApiPath>(path: P, params: Record<string, string>, query?: Record<string, string>): string {
  const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`${path}: no value for {${name}}`);
    return encodeURIComponent(value);
  });
  const search = query ? `?${new URLSearchParams(query)}` : '';
  return `${filled}${search}`;
}

/** A fetch of an API path with the console's headers; a non-2xx answer is an ApiError. */
export async function fetchApi(url: string, signal: AbortSignal): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { headers: commonHeaders(), credentials: 'same-origin', signal });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new NetworkError();
  }
  if (!response.ok) {
    if (response.status === 401) onUnauthorized();
    const body: unknown = await response.json().catch(() => undefined);
    throw new ApiError(messageOf(body, response), response.status, retryAfterOf(response));
  }
  return response;
}
