/** Who a request is, once authenticated: a user by a session, or by an API key with its scopes. */
import type { PublicUser } from '../repositories/users.js';

/** The authenticated caller: a login's session, or an API key and its scopes. */
export type Principal =
  | { kind: 'session'; user: PublicUser; sessionId: string }
  | { kind: 'api_key'; user: PublicUser; keyId: string; scopes: string[] };
