/** Readiness: the database and Temporal answer within a bound, or say why not (GET /readyz). */
import { sql } from 'drizzle-orm';
import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { rootCause } from '../core/failures.js';

export interface Check {
  status: 'ok' | 'down';
  error?: string;
}

async function check(probe: () => Promise<unknown>, timeoutMs: number): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs}ms`)), timeoutMs);
      }),
    ]);
    return { status: 'ok' };
  } catch (error) {
    return { status: 'down', error: rootCause(error).message };
  } finally {
    clearTimeout(timer);
  }
}

export function createReadiness(deps: { db: Database; temporal: Client; timeoutMs?: number }) {
  const { db, temporal, timeoutMs = 2000 } = deps;
  return {
    async check(): Promise<{ ready: boolean; checks: { database: Check; temporal: Check } }> {
      const [database, temporalCheck] = await Promise.all([
        check(() => db.execute(sql`select 1`), timeoutMs),
        check(() => temporal.connection.workflowService.getSystemInfo({}), timeoutMs),
      ]);
      return { ready: database.status === 'ok' && temporalCheck.status === 'ok', checks: { database, temporal: temporalCheck } };
    },
  };
}

export type Readiness = ReturnType<typeof createReadiness>;
