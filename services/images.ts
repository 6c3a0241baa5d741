/** Image records as the API shows them, and their removal through the removeImage workflow. */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { conflict, notFound } from '../core/errors.js';
import { removeImageId, removeImageWorkflow, type RemoveImageResult } from '../contracts/remove-image.js';
import * as imageRepo from '../repositories/images.js';
import * as containerRepo from '../repositories/containers.js';
import { toImageView, type ImageRow, type ImageView, type Viewer } from '../repositories/images.js';
import type { PageRequest, Page } from '../repositories/paging.js';
import type { WorkflowRuns } from './workflow-runs.js';

export type { ImageRow, ImageView } from '../repositories/images.js';

export function createImageService(deps: { db: Database; runs: Pick<WorkflowRuns, 'start' | 'wait'> }) {
  const { db, runs } = deps;

  async function getVisible(user: Viewer, id: string): Promise<ImageRow> {
    const row = await imageRepo.findVisible(db, user, id);
    if (!row) throw notFound('Image');
    return row;
  }

  /** For a removal: the owner (or an admin) only; a public image is removed by an admin; none that a container uses. */
  async function getRemovable(user: Viewer, id: string): Promise<ImageRow> {
    const row = await getVisible(user, id);
    if (user.role !== 'admin' && row.userId !== user.id) throw notFound('Image');
    const inUse = await containerRepo.countLiveUsingImage(db, id);
    if (inUse > 0) throw conflict(`The image is used by ${inUse} container(s); remove them first.`);
    return row;
  }

  return {
    /** The images the user may see, newest first (an admin may filter by owner). */
    async list(user: Viewer, filter: { userId?: string }, page: PageRequest): Promise<Page<ImageView>> {
      const { items, total } = await imageRepo.listVisible(db, user, filter, page);
      return { items: items.map(toImageView), total };
    },

    /** One image the user may see. */
    async get(user: Viewer, id: string): Promise<ImageView> {
      return toImageView(await getVisible(user, id));
    },

    getRemovable,

    /**
     * Removes an image through its workflow (off the host, refund, record deleted) and waits for
     * it, up to BERTH_WAIT_TIMEOUT: then 504, the removal goes on. A removal of this image already
     * running is waited for instead of started again.
     */
    async remove(user: Viewer, id: string): Promise<{ id: string } & RemoveImageResult> {
      const row = await getRemovable(user, id);
      const workflowId = removeImageId(row.id);
      try {
        await runs.start(removeImageWorkflow, {
          workflowId,
          args: [{ imageId: row.id, hostId: row.hostId, reference: row.reference, reason: `image ${row.reference} removed` }],
          subject: { userId: row.userId, hostId: row.hostId, resourceId: row.id },
        });
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      }
      const result = await runs.wait(removeImageWorkflow, workflowId, { followAt: `/api/v1/images/${row.id}`, what: 'removal' });
      return { id: row.id, ...result };
    },

    async publish(id: string): Promise<ImageView> {
      const row = await imageRepo.publish(db, id);
      if (!row) throw notFound('Image');
      return toImageView(row);
    },
  };
}

export type ImageService = ReturnType<typeof createImageService>;
