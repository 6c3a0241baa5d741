/** Image records: what the API lists and what the image workflows write. */
import { and, count, desc, eq, isNull, ne, or, sql, type SQL } from 'drizzle-orm';
import type { Database, Transaction } from '../db/client.js';
import { containers, images } from '../db/schema.js';
import { sizeMb } from '../core/sizes.js';
import { conflict, notFound } from '../core/errors.js';
import type { PublicUser } from './users.js';

export type ImageRow = typeof images.$inferSelect;

/** What a pull is asked to do: the pullImage workflow's input, recorded with the image. */
export interface PullRequest {
  pullId: string;
  userId: string;
  hostId: string;
  /** Normalized by core/image-ref before the workflow starts. */
  reference: string;
  repository: string;
  tag: string | null;
  digest: string | null;
}

/** An image as the API and workflow results show it (JSON-safe). */
export interface ImageView {
  id: string;
  userId: string;
  reference: string;
  repository: string;
  tag: string | null;
  digest: string | null;
  imageId: string;
  sizeBytes: number;
  sizeMb: number;
  host: string;
  ports: string[];
  visibility: 'private' | 'public';
  charged: number;
  pullId: string | null;
  createdAt: string;
}

export function toImageView(row: ImageRow): ImageView {
  return {
    id: row.id,
    userId: row.userId,
    reference: row.reference,
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    imageId: row.imageId,
    sizeBytes: row.sizeBytes,
    sizeMb: sizeMb(row.sizeBytes),
    host: row.hostId,
    ports: row.ports,
    visibility: row.visibility,
    charged: row.charged,
    pullId: row.pullId,
    createdAt: row.createdAt.toISOString(),
  };
}

/** Images the caller may see: their own and the public ones; admins see all. */
function visibleTo(user: PublicUser): SQL | undefined {
  return user.role === 'admin' ? undefined : or(eq(images.userId, user.id), eq(images.visibility, 'public'));
}

export function createImageService(db: Database) {
  async function getVisible(user: PublicUser, id: string): Promise<ImageRow> {
    const [row] = await db.select().from(images).where(and(eq(images.id, id), visibleTo(user)));
    if (!row) throw notFound('Image');
    return row;
  }

  return {
    async list(user: PublicUser, opts: { userId?: string; limit: number; offset: number }) {
      const filters = [visibleTo(user)];
      if (opts.userId && user.role === 'admin') filters.push(eq(images.userId, opts.userId));
      const where = and(...filters);
      const [rows, [totals]] = await Promise.all([
        db.select().from(images).where(where).orderBy(desc(images.createdAt), desc(images.id)).limit(opts.limit).offset(opts.offset),
        db.select({ total: count() }).from(images).where(where),
      ]);
      return { items: rows.map(toImageView), total: totals?.total ?? 0 };
    },

    getVisible,

    /** For a removal: the owner (or an admin) only; a public image is removed by an admin. */
    async getRemovable(user: PublicUser, id: string): Promise<ImageRow> {
      const row = await getVisible(user, id);
      if (user.role !== 'admin' && row.userId !== user.id) throw notFound('Image');
      const [inUse] = await db
        .select({ n: count() })
        .from(containers)
        .where(and(eq(containers.imageId, id), isNull(containers.removedAt)));
      if (inUse && inUse.n > 0) throw conflict(`The image is used by ${inUse.n} container(s); remove them first.`);
      return row;
    },

    async publish(id: string): Promise<ImageView> {
      const [row] = await db.update(images).set({ visibility: 'public' }).where(eq(images.id, id)).returning();
      if (!row) throw notFound('Image');
      return toImageView(row);
    },
  };
}

export type ImageService = ReturnType<typeof createImageService>;

/** The records for `reference` on a host other than `exceptId`: while any exists, the host keeps the image. */
export async function countOtherRecords(
  db: Database | Transaction,
  hostId: string,
  reference: string,
  exceptId?: string,
): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(images)
    .where(and(eq(images.hostId, hostId), eq(images.reference, reference), exceptId ? ne(images.id, exceptId) : sql`true`));
  return row?.n ?? 0;
}
