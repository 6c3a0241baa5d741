/** Docker hosts as the database knows them (status from the last heartbeat), and the host ping. */
import { AppError, gatewayTimeout, notFound, unprocessable } from '../core/errors.js';
import type { Database } from '../db/client.js';
import { PING_TIMEOUT, pingHostId, pingHostWorkflow, type EngineInfo } from '../contracts/ping-host.js';
import * as repo from '../repositories/hosts.js';
import type { WorkflowRuns } from './workflow-runs.js';

export type HostRow = repo.HostRow;
export interface HostView extends HostRow {
  status: 'up' | 'down';
}

export function createHostService(deps: { db: Database; staleAfterMs: number; runs: Pick<WorkflowRuns, 'start' | 'wait'> }) {
  const { db, staleAfterMs, runs } = deps;
  const view = (row: HostRow, now = Date.now()): HostView => ({
    ...row,
    status: now - row.lastHeartbeatAt.getTime() <= staleAfterMs ? 'up' : 'down',
  });

  async function get(id: string): Promise<HostView | undefined> {
    const row = await repo.findHost(db, id);
    return row && view(row);
  }

  return {
    /** Every host by id, with its live containers (not removed). */
    async list(): Promise<Array<HostView & { containers: number }>> {
      const now = Date.now();
      return (await repo.hostsByLoad(db))
        .sort((a, b) => (a.host.id < b.host.id ? -1 : a.host.id > b.host.id ? 1 : 0))
        .map(({ host, load }) => ({ ...view(host, now), containers: load }));
    },

    get,

    /**
     * The host to run on: the one named (it must exist and be up), else the up host
     * with the fewest live containers.
     */
    async pick(requested?: string): Promise<HostView> {
      if (requested !== undefined) {
        const row = await repo.findHost(db, requested);
        if (!row) throw unprocessable(`Host "${requested}" is not known.`).withDetailZh(`主机 "${requested}" 不存在。`);
        const host = view(row);
        if (host.status !== 'up') throw unprocessable(`Host "${requested}" is down.`).withDetailZh(`主机 "${requested}" 已离线。`);
        return host;
      }
      const up = (await repo.hostsByLoad(db)).map((r) => view(r.host)).filter((h) => h.status === 'up');
      if (!up[0]) throw unprocessable('No Docker host is up.').withDetailZh('没有正在运行的 Docker 主机。');
      return up[0];
    },

    /**
     * Runs the pingHost workflow for an up host and waits for its answer (the run is bounded by
     * PING_TIMEOUT): 404 for an unknown host, 422 for one that is down, 504 when it did not answer.
     */
    async ping(hostId: string, requestId: string): Promise<EngineInfo & { workflowId: string; durationMs: number }> {
      const host = await get(hostId);
      if (!host) throw notFound(`Host "${hostId}"`);
      if (host.status !== 'up') throw unprocessable(`Host "${host.id}" is down: no heartbeat since ${host.lastHeartbeatAt.toISOString()}.`);
      const workflowId = pingHostId(host.id, requestId);
      const started = Date.now();
      await runs.start(pingHostWorkflow, { workflowId, args: [host.id], subject: { hostId: host.id }, workflowExecutionTimeout: PING_TIMEOUT });
      try {
        const info = await runs.wait(pingHostWorkflow, workflowId, { followAt: `temporal workflow describe --workflow-id ${workflowId}` });
        return { ...info, workflowId, durationMs: Date.now() - started };
      } catch (error) {
        // Whatever made the run fail (the activity's timeout on a host that stopped polling, the run's own), the host did not answer.
        if (error instanceof AppError && error.status === 502) {
          throw gatewayTimeout(`Host "${host.id}" did not answer: ${error.detail || error.title}`);
        }
        throw error;
      }
    },
  };
}

export type HostService = ReturnType<typeof createHostService>;
