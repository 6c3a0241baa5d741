/**
 * The audit log on the control worker: where a system action's entry comes from (the workflow
 * whose activity writes it), and the retention job's purge. The entries themselves are written
 * by the activities that act (containers-db.ts, images-db.ts, release.ts, dcu-db.ts), in the
 * transaction of the state change they record where there is one.
 */
import { Context, type Info } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { appendAudit, purgeOlderThan, systemEntry } from '../repositories/audit.js';

export interface AuditOrigin {
  /** The workflow that scheduled the running activity; null outside an activity (a direct call, in a test). */
  workflowId: string | null;
  /** The running activity across its retries (`<runId>/<activityId>`); null outside an activity. */
  execution: string | null;
  /** The running attempt (1 outside an activity). */
  attempt: number;
  /**
   * Where a search for the entries of this activity's earlier attempts may start: its first
   * attempt's scheduled time, less a margin (a day back outside an activity).
   */
  since: Date;
}

const MARGIN_MS = 10 * 60_000;
const DAY_MS = 86_400_000;

function currentInfo(): Info | undefined {
  try {
    return Context.current().info;
  } catch {
    return undefined;
  }
}

/** Where the running activity's audit entries come from. */
export function auditOrigin(): AuditOrigin {
  const info = currentInfo();
  const wf = info?.workflowExecution;
  return {
    workflowId: wf?.workflowId ?? null,
    execution: info && wf ? `${wf.runId}/${info.activityId}` : null,
    attempt: info?.attempt ?? 1,
    since: new Date((info?.scheduledTimestampMs ?? Date.now() - DAY_MS) - MARGIN_MS),
  };
}

export function createAuditDbActivities(deps: { db: Database }) {
  const { db } = deps;
  return {
    /**
     * The `berth-audit-retention` schedule's step: deletes the entries older than `retentionDays`
     * (the only DELETE the table's trigger lets through) and, when it deleted any, says so in the
     * log itself (`audit.purge`). A retry after the purge finds nothing older left to delete.
     */
    async purgeAuditLog(retentionDays: number): Promise<number> {
      const deleted = await purgeOlderThan(db, retentionDays);
      if (deleted > 0) {
        await appendAudit(db, [
          systemEntry({
            action: 'audit.purge',
            targetType: 'audit_log',
            targetId: null,
            subjectUserId: null,
            workflowId: auditOrigin().workflowId,
            detail: { deleted, retentionDays },
          }),
        ]);
      }
      return deleted;
    },
  };
}

export type AuditDbActivities = ReturnType<typeof createAuditDbActivities>;
