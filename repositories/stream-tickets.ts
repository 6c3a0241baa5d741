/** Single-use, short-lived tickets that open a container's stats WebSocket. Only hashes are stored. */
import { and, eq, gt, lt } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { streamTickets } from '../db/schema.js';

export async function insertTicket(db: Executor, row: { ticketHash: string; userId: string; containerId: string; expiresAt: Date }): Promise<void> {
  await db.delete(streamTickets).where(lt(streamTickets.expiresAt, new Date()));
  await db.insert(streamTickets).values(row);
}

/** Takes the ticket (once: it is deleted), while it is valid; its user and container. */
export async function consumeTicket(db: Executor, ticketHash: string, now: Date): Promise<{ userId: string; containerId: string } | undefined> {
  const [row] = await db
    .delete(streamTickets)
    .where(and(eq(streamTickets.ticketHash, ticketHash), gt(streamTickets.expiresAt, now)))
    .returning({ userId: streamTickets.userId, containerId: streamTickets.containerId });
  return row;
}
