/**
 * What no log line may hold: bearer tokens, API keys, passwords, Authorization and cookie
 * headers, single-use tickets, presigned-URL signatures. Every process's logger passes each
 * line's fields through `redactLogObject` (core/logger.ts).
 */
export const REDACTED = '[redacted]';

/** Fields whose value is a secret whatever it holds. */
const SECRET_KEYS = /^(authorization|proxy-authorization|cookie|set-cookie|password|currentpassword|newpassword|token|access_token|api_key|apikey|ticket|secret|internaltoken|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;
/** Query parameters whose value is a secret. */
const SECRET_PARAMS = /([?&](?:ticket|access_token|token|api_key|apikey|key|password|signature|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&#\s"']*/gi;
const BEARER = /(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi;
const API_KEY = /berth_[A-Za-z0-9_-]{16,}/g;

/** A string with the values of secret query parameters, bearer credentials and API keys replaced. */
export function redactString(text: string): string {
  if (!/[?&=]|bearer|berth_/i.test(text)) return text;
  return text.replace(SECRET_PARAMS, `$1${REDACTED}`).replace(BEARER, `$1${REDACTED}`).replace(API_KEY, `berth_${REDACTED}`);
}

/** A copy of a log line's fields with every secret replaced (nested objects and arrays too). */
export function redactLogObject(value: Record<string, unknown>): Record<string, unknown> {
  return redact(value, 0) as Record<string, unknown>;
}

function redact(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactString(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = SECRET_KEYS.test(key) && v !== undefined && v !== null ? REDACTED : redact(v, depth + 1);
  return out;
}
