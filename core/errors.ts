/**
 * Domain errors with a stable type and an HTTP status. The API maps them to
 * application/problem+json in one handler; anything else is a 500 whose details
 * stay in the log.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly title: string,
    readonly detail?: string,
    /** Response headers the error carries (e.g. Retry-After). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail ?? title);
    this.name = 'AppError';
  }

  /** The detail in Simplified Chinese, for the DCU API's callers (api/dcu-messages.ts). */
  detailZh?: string;

  /** Gives the error its Chinese detail, where it is made (the values it names are at hand there). */
  withDetailZh(text: string): this {
    this.detailZh = text;
    return this;
  }
}

export const badRequest = (detail: string) => new AppError(400, 'bad-request', 'Bad Request', detail);
export const unauthorized = (detail = 'Authentication is required.') =>
  new AppError(401, 'unauthorized', 'Unauthorized', detail);
export const forbidden = (detail = 'You are not allowed to do this.') => new AppError(403, 'forbidden', 'Forbidden', detail);
export const notFound = (what: string) => new AppError(404, 'not-found', 'Not Found', `${what} was not found.`);
export const conflict = (detail: string) => new AppError(409, 'conflict', 'Conflict', detail);
export const unprocessable = (detail: string) =>
  new AppError(422, 'unprocessable', 'Unprocessable Entity', detail);
export const unavailable = (detail: string) =>
  new AppError(503, 'unavailable', 'Service Unavailable', detail);
export const gatewayTimeout = (detail: string) => new AppError(504, 'timeout', 'Gateway Timeout', detail);
/** A 429 that says when to come back (seconds, rounded up, at least 1). */
export const tooManyRequests = (detail: string, retryAfterMs: number) =>
  new AppError(429, 'too-many-requests', 'Too Many Requests', detail, { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) });
