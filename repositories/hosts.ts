/**
 * The hosts aggregate's data access: Docker hosts as their host workers register them and keep
 * them alive. Every hosts query lives here. Functions take the pool or the caller's transaction
 * (`Executor`). Hosts are visible to admins only (the routes check the role).
 */
import { and, asc, count, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { containers, hosts } from '../db/schema.js';

export type HostRow = typeof hosts.$inferSelect;
export type HostRegistration = Pick<HostRow, 'id' | 'dockerEndpoint' | 'engineId' | 'engineVersion' | 'streamUrl' | 'publishIp'>;

/** Every host, by id. */
export function listHosts(db: Executor): Promise<HostRow[]> {
  return db.select().from(hosts).orderBy(asc(hosts.id));
}

export async function findHost(db: Executor, id: string): Promise<HostRow | undefined> {
  const [row] = await db.select().from(hosts).where(eq(hosts.id, id));
  return row;
}

/** Every host with its number of live containers, the least loaded first (then by id). */
export async function hostsByLoad(db: Executor): Promise<Array<{ host: HostRow; load: number }>> {
  return db
    .select({ host: hosts, load: count(containers.id) })
    .from(hosts)
    .leftJoin(containers, and(eq(containers.hostId, hosts.id), isNull(containers.removedAt)))
    .groupBy(hosts.id)
    .orderBy(asc(count(containers.id)), asc(hosts.id));
}

/** Registered host ids, the most recently alive first (the order sweeps try them in). */
export async function listHostIds(db: Executor): Promise<string[]> {
  const rows = await db.select({ id: hosts.id }).from(hosts).orderBy(desc(hosts.lastHeartbeatAt), asc(hosts.id));
  return rows.map((r) => r.id);
}

/** A host worker's registration at start (the engine it talks to may have changed): a heartbeat too. */
export async function upsertHost(db: Executor, row: HostRegistration): Promise<void> {
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
}

/** A host worker's heartbeat: the host is up while it is recent. */
export async function recordHeartbeat(db: Executor, id: string): Promise<void> {
  await db.update(hosts).set({ lastHeartbeatAt: sql`now()` }).where(eq(hosts.id, id));
}
