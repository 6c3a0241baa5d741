import { log, proxyActivities } from '@temporalio/workflow';
import type { ControlActivities } from '../activities/control-activities.js';
import type { AuditRetentionInput, AuditRetentionResult } from '../contracts/audit-retention.js';
import { sweepDatabase } from './activity-profiles.js';

const db = proxyActivities<ControlActivities>(sweepDatabase);

/** The `berth-audit-retention` schedule's workflow: the audit log's entries older than the retention go. */
export async function auditRetention(input: AuditRetentionInput): Promise<AuditRetentionResult> {
  const deleted = await db.purgeAuditLog(input.retentionDays);
  log.info('audit log purged', { retentionDays: input.retentionDays, deleted });
  return { retentionDays: input.retentionDays, deleted };
}
