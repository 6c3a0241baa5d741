/**
 * Credential changes, told to every API process: a revocation, a password change, a disabled
 * user or a changed role notifies CREDENTIALS_CHANNEL in the changing transaction, and each API
 * process's credential cache (services/credential-cache.ts) LISTENs on it and drops that user's entries.
 */
import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';

/** The PostgreSQL channel told the id of a user whose credentials ended or changed. */
export const CREDENTIALS_CHANNEL = 'berth_credentials';

/** Tells every API process (LISTEN CREDENTIALS_CHANNEL) that the user's credentials changed; delivered at commit. */
export async function notifyCredentialsChanged(db: Executor, userId: string): Promise<void> {
  await db.execute(sql`select pg_notify(${CREDENTIALS_CHANNEL}, ${userId})`);
}
