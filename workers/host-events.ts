/**
 * Reconciliation: Docker events for Berth's containers on this host (die, oom,
 * start, destroy) become an `observed` signal to the container's workflow, which
 * asks Docker for the real state and corrects the record and the billing. At start
 * and after each reconnect, every live container of this host is signalled, so
 * nothing that happened while the stream was down is missed.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { LABEL_ID } from '../core/container-labels.js';
import { containerWorkflowId, observedSignal } from '../contracts/container.js';

export function watchContainerEvents(opts: {
  docker: Docker;
  temporal: Client;
  liveContainerIds: () => Promise<string[]>;
  logger: Logger;
}): { stop: () => void } {
  const { docker, temporal, logger } = opts;
  let stopped = false;
  let current: Readable | undefined;

  async function signal(id: string, action: string) {
    try {
      await temporal.workflow.getHandle(containerWorkflowId(id)).signal(observedSignal, { action });
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) logger.warn({ err: error, id }, 'could not signal container workflow');
    }
  }

  async function run() {
    let delay = 500;
    while (!stopped) {
      try {
        current = (await docker.getEvents({
          filters: { type: ['container'], label: [LABEL_ID], event: ['start', 'die', 'oom', 'destroy'] },
        })) as unknown as Readable;
        delay = 500;
        for (const id of await opts.liveContainerIds()) await signal(id, 'reconcile');
        for await (const line of createInterface({ input: current })) {
          const event = JSON.parse(line) as { Action?: string; Actor?: { Attributes?: Record<string, string> } };
          const id = event.Actor?.Attributes?.[LABEL_ID];
          if (id && event.Action) await signal(id, event.Action);
        }
      } catch (error) {
        if (!stopped) logger.warn({ err: error }, 'docker event stream failed; reconnecting');
      }
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }

  void run();
  return {
    stop: () => {
      stopped = true;
      current?.destroy();
    },
  };
}
