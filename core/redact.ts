/**
 * What no log line may hold: bearer tokens, API keys (Berth's and Temporal's), passwords,
 * Authorization and cookie headers, single-use tickets, presigned-URL signatures, PEM private
 * keys (the TLS keys in the configuration). Every process's logger passes each
 * line, as written, through `redactJsonLine` (core/logger.ts): after the serializers, so what
 * they add (a request's URL) is covered too.
 */
export const REDACTED = '[redacted]';

/** Query parameters whose value is a secret. */
const SECRET_PARAMS = /([?&](?:ticket|access_token|token|api_key|apikey|key|password|signature|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&#\s"']*/gi;
const BEARER = /(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi;
const API_KEY = /berth_[A-Za-z0-9_-]{16,}/g;
/** A PEM private key, its lines joined by real or JSON-escaped newlines. */
const PRIVATE_KEY = /(-----BEGIN ([A-Z ]*)PRIVATE KEY-----)[\s\S]*?(-----END \2PRIVATE KEY-----)/g;

/** A string with the values of secret query parameters, bearer credentials, API keys and private keys replaced. */
export function redactString(text: string): string {
  if (!/[?&=]|bearer|berth_|PRIVATE KEY/i.test(text)) return text;
  return text
    .replace(SECRET_PARAMS, `$1${REDACTED}`)
    .replace(BEARER, `$1${REDACTED}`)
    .replace(API_KEY, `berth_${REDACTED}`)
    .replace(PRIVATE_KEY, `$1${REDACTED}$3`);
}

const SECRET_FIELD = /"(authorization|proxy-authorization|cookie|set-cookie|password|currentPassword|newPassword|token|access_token|api_key|apikey|ticket|secret|secretKey|internalToken|x-amz-signature|x-amz-credential|x-amz-security-token)":"(?:[^"\\]|\\.)*"/gi;

/** A JSON log line with secret fields' string values and every secret in any string replaced. */
export function redactJsonLine(line: string): string {
  return redactString(line.replace(SECRET_FIELD, `"$1":"${REDACTED}"`));
}
