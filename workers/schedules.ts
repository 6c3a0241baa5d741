/**
 * The Temporal Schedules Berth runs, created (or brought up to date) when the control
 * worker starts: idempotent, so every start may call it.
 *
 *   berth-dcu-gzip-cleanup    local DCU archives older than BERTH_DCU_GZIP_RETENTION_DAYS, on every host
 *   berth-dcu-object-cleanup  DCU objects older than BERTH_DCU_OBJECT_RETENTION_DAYS, tasks marked expired
 *   berth-nightly-release     every container, then every private image (BERTH_RELEASE_CRON in BERTH_RELEASE_TIMEZONE)
 *   berth-audit-retention     audit log entries older than BERTH_AUDIT_RETENTION_DAYS, daily at 03:00 UTC
 *
 * Operators: `temporal schedule trigger --schedule-id berth-dcu-gzip-cleanup` runs one now.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { AuditRetentionConfig, DcuControlConfig, ReleaseConfig } from '../core/config.js';
import { RELEASE_SCHEDULE_ID, type NightlyReleaseInput } from '../contracts/nightly-release.js';
import { AUDIT_RETENTION_CRON, AUDIT_RETENTION_SCHEDULE_ID, type AuditRetentionInput } from '../contracts/audit-retention.js';
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { DCU_SCHEDULES, type DcuCleanupInput } from '../contracts/dcu-cleanup.js';

interface ScheduleDefinition {
  scheduleId: string;
  cron: string;
  timezone?: string;
  workflowType: 'dcuGzipCleanup' | 'dcuObjectCleanup' | 'nightlyRelease' | 'auditRetention';
  input: DcuCleanupInput | NightlyReleaseInput | AuditRetentionInput;
  note: string;
  catchupWindow?: string;
}

export function dcuScheduleDefinitions(dcu: DcuControlConfig): ScheduleDefinition[] {
  return [
    {
      scheduleId: DCU_SCHEDULES.gzipCleanup,
      cron: dcu.gzipCleanupCron,
      workflowType: 'dcuGzipCleanup',
      input: { retentionDays: dcu.gzipRetentionDays },
      note: `Deletes local DCU archives older than ${dcu.gzipRetentionDays} day(s) on every host`,
    },
    {
      scheduleId: DCU_SCHEDULES.objectCleanup,
      cron: dcu.objectCleanupCron,
      workflowType: 'dcuObjectCleanup',
      input: { retentionDays: dcu.objectRetentionDays },
      note: `Deletes DCU objects older than ${dcu.objectRetentionDays} day(s) and marks their tasks expired`,
    },
  ];
}

/** The nightly release: every container, then every private image, refunding. */
export function releaseScheduleDefinition(release: ReleaseConfig): ScheduleDefinition {
  return {
    scheduleId: RELEASE_SCHEDULE_ID,
    cron: release.cron,
    timezone: release.timezone,
    workflowType: 'nightlyRelease',
    input: { concurrency: release.concurrency },
    note: `Removes every container, then every private image, refunding (${release.cron} ${release.timezone})`,
    // A short catch-up window: a release missed by more than this waits for the next night.
    catchupWindow: '10m',
  };
}

/** The audit log's retention: entries older than the configured days are deleted, daily. */
export function auditRetentionScheduleDefinition(audit: AuditRetentionConfig): ScheduleDefinition {
  return {
    scheduleId: AUDIT_RETENTION_SCHEDULE_ID,
    cron: AUDIT_RETENTION_CRON,
    workflowType: 'auditRetention',
    input: { retentionDays: audit.retentionDays },
    note: `Deletes audit log entries older than ${audit.retentionDays} day(s)`,
  };
}

/**
 * Creates a schedule, or updates it to the configured spec when it exists already.
 * A pause set by an operator survives the update.
 */
export async function upsertSchedule(client: Client, def: ScheduleDefinition, logger?: Logger): Promise<void> {
  const spec = { cronExpressions: [def.cron], ...(def.timezone ? { timezone: def.timezone } : {}) };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: def.workflowType,
    workflowId: def.scheduleId,
    args: [def.input],
    taskQueue: CONTROL_TASK_QUEUE,
  };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: def.catchupWindow ?? '1h' };
  try {
    await client.schedule.create({ scheduleId: def.scheduleId, spec, action, policies, state: { note: def.note } });
    logger?.info({ scheduleId: def.scheduleId, cron: def.cron }, 'schedule created');
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await client.schedule.getHandle(def.scheduleId).update((previous) => ({
      ...previous,
      spec,
      action,
      policies: { ...previous.policies, ...policies },
    }));
    logger?.info({ scheduleId: def.scheduleId, cron: def.cron }, 'schedule updated');
  }
}

/** Every schedule Berth runs, brought up to date. */
export async function ensureSchedules(client: Client, config: { dcu: DcuControlConfig; release: ReleaseConfig; audit: AuditRetentionConfig }, logger?: Logger) {
  for (const def of [...dcuScheduleDefinitions(config.dcu), releaseScheduleDefinition(config.release), auditRetentionScheduleDefinition(config.audit)]) {
    await upsertSchedule(client, def, logger);
  }
}
