/** Docker hosts as the database knows them; status is derived from the last heartbeat. */
import { and, asc, count, eq, isNull, sql } from 'drizzle-orm';
import { unprocessable } from '../core/errors.js';
import type { Database } from '../db/client.js';
import { containers, hosts } from '../db/schema.js';

export type HostRow = typeof hosts.$inferSelect;
export interface HostView extends HostRow {
  status: 'up' | 'down';
}

export function createHostService(deps: { db: Database; staleAfterMs: number }) {
  const { db, staleAfterMs } = deps;
  const view = (row: HostRow, now = Date.now()): HostView => ({
    ...row,
    status: now - row.lastHeartbeatAt.getTime() <= staleAfterMs ? 'up' : 'down',
  });
  return {
    async list(): Promise<HostView[]> {
      const rows = await db.select().from(hosts).orderBy(asc(hosts.id));
      return rows.map((row) => view(row));
    },
    async get(id: string): Promise<HostView | undefined> {
      const [row] = await db.select().from(hosts).where(eq(hosts.id, id));
      return row && view(row);
    },
    /** Called by a host worker at start: the engine it talks to may have changed. */
    async register(row: Pick<HostRow, 'id' | 'dockerEndpoint' | 'engineId' | 'engineVersion' | 'streamUrl' | 'publishIp'>): Promise<void> {
      await db
        .insert(hosts)
        .values(row)
        .onConflictDoUpdate({
          target: hosts.id,
          set: {
            dockerEndpoint: row.dockerEndpoint,
            engineId: row.engineId,
            engineVersion: row.engineVersion,
            streamUrl: row.streamUrl,
            publishIp: row.publishIp,
            lastHeartbeatAt: sql`now()`,
          },
        });
    },
    /**
     * The host to run on: the one named (it must exist and be up), else the up host
     * with the fewest live containers.
     */
    async pick(requested?: string): Promise<HostView> {
      if (requested !== undefined) {
        const [row] = await db.select().from(hosts).where(eq(hosts.id, requested));
        if (!row) throw unprocessable(`Host "${requested}" is not known.`);
        const host = view(row);
        if (host.status !== 'up') throw unprocessable(`Host "${requested}" is down.`);
        return host;
      }
      const rows = await db
        .select({ host: hosts, load: count(containers.id) })
        .from(hosts)
        .leftJoin(containers, and(eq(containers.hostId, hosts.id), isNull(containers.removedAt)))
        .groupBy(hosts.id)
        .orderBy(asc(count(containers.id)), asc(hosts.id));
      const up = rows.map((r) => view(r.host)).filter((h) => h.status === 'up');
      if (!up[0]) throw unprocessable('No Docker host is up.');
      return up[0];
    },

    async heartbeat(id: string): Promise<void> {
      await db.update(hosts).set({ lastHeartbeatAt: sql`now()` }).where(eq(hosts.id, id));
    },
  };
}

export type HostService = ReturnType<typeof createHostService>;
