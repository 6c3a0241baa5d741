/** Image pulls as the API sees them: started, watched and awaited through Temporal. */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { CONTROL_TASK_QUEUE, workflowIds } from '../core/temporal-names.js';
import { InvalidReferenceError, parseImageReference } from '../core/image-ref.js';
import { badRequest, gatewayTimeout, notFound } from '../core/errors.js';
import type { PullSnapshot } from '../core/pull-progress.js';
import type { PullImageInput, PullImageResult, pullImage } from '../workflows/pull-image.js';
import { rootFailure } from './workflow-failures.js';
import type { HostService } from './hosts.js';
import type { PublicUser } from './users.js';

export interface PullStatus {
  pullId: string;
  state: 'running' | 'completed' | 'failed';
  progress: PullSnapshot | null;
  image?: PullImageResult['image'];
  deduped?: boolean;
  error?: { type?: string; message: string };
}

export function createPullService(deps: { temporal: Client; hosts: Pick<HostService, 'pick'>; waitTimeoutMs: number }) {
  const { temporal, hosts, waitTimeoutMs } = deps;

  async function ownedHandle(user: PublicUser, pullId: string) {
    const handle = temporal.workflow.getHandle<typeof pullImage>(pullId);
    try {
      const description = await handle.describe();
      if (description.type !== 'pullImage' || (user.role !== 'admin' && description.memo?.userId !== user.id)) {
        throw notFound('Pull');
      }
      return { handle, description };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw notFound('Pull');
      throw error;
    }
  }

  return {
    /** Validates the reference and the host, then starts the workflow; nothing starts on bad input. */
    async start(user: PublicUser, body: { image: string; host?: string }) {
      let ref;
      try {
        ref = parseImageReference(body.image);
      } catch (error) {
        if (error instanceof InvalidReferenceError) throw badRequest(`Invalid image reference: ${error.message}.`);
        throw error;
      }
      const host = await hosts.pick(body.host);
      const pullId = workflowIds.pullImage(randomUUID());
      const input: PullImageInput = {
        pullId,
        userId: user.id,
        hostId: host.id,
        reference: ref.reference,
        repository: ref.repository,
        tag: ref.tag ?? null,
        digest: ref.digest ?? null,
      };
      await temporal.workflow.start<typeof pullImage>('pullImage', {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: pullId,
        args: [input],
        memo: { userId: user.id, reference: ref.reference, hostId: host.id },
      });
      return { pullId, image: ref.reference, host: host.id };
    },

    async status(user: PublicUser, pullId: string): Promise<PullStatus> {
      const { handle, description } = await ownedHandle(user, pullId);
      if (description.status.name === 'RUNNING') {
        const pending = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'pullImage');
        const payload = pending?.heartbeatDetails?.payloads?.[0];
        const progress = payload ? defaultPayloadConverter.fromPayload<PullSnapshot>(payload) : null;
        return { pullId, state: 'running', progress };
      }
      try {
        const result = await handle.result();
        return { pullId, state: 'completed', progress: result.progress, image: result.image, deduped: result.deduped };
      } catch (error) {
        return { pullId, state: 'failed', progress: null, error: rootFailure(error) };
      }
    },

    /** Waits for the end; the workflow's failure is thrown as it is, for the caller to map. */
    async result(pullId: string): Promise<PullImageResult> {
      const handle = temporal.workflow.getHandle<typeof pullImage>(pullId);
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          handle.result(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(gatewayTimeout(`The pull is still running; follow it at /api/v1/images/pulls/${pullId}.`)),
              waitTimeoutMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export type PullService = ReturnType<typeof createPullService>;
