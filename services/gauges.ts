/**
 * What the API's gauges read on each scrape (api/plugins/metrics.ts), never kept in memory: the
 * hosts and whether each is up (the hosts API's rule), live container records by state and host
 * (one GROUP BY), and Berth's schedules as Temporal describes them (a handful of calls).
 */
import type { Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import * as containerRepo from '../repositories/containers.js';
import { AUDIT_RETENTION_SCHEDULE_ID } from '../contracts/audit-retention.js';
import { DCU_SCHEDULES } from '../contracts/dcu-cleanup.js';
import { RELEASE_SCHEDULE_ID } from '../contracts/nightly-release.js';
import type { HostService } from './hosts.js';

/** Every schedule the control worker keeps (workers/schedules.ts). */
export const SCHEDULE_IDS = [DCU_SCHEDULES.gzipCleanup, DCU_SCHEDULES.objectCleanup, RELEASE_SCHEDULE_ID, AUDIT_RETENTION_SCHEDULE_ID] as const;

/** A schedule is described within this long, or its gauges are left out of the scrape. */
const DESCRIBE_TIMEOUT_MS = 3000;

export interface ScheduleGauges {
  scheduleId: string;
  /** When its last action was actually taken; null until it has run. */
  lastRunAt: Date | null;
  /** Actions it missed by more than its catch-up window. */
  missedRuns: number;
  paused: boolean;
}

export function createGaugeService(deps: { db: Database; temporal: Client; hosts: Pick<HostService, 'list'> }) {
  const { db, temporal, hosts } = deps;
  return {
    /** Every host, up or down by its last heartbeat (one query). */
    async hostsUp(): Promise<Array<{ hostId: string; up: boolean }>> {
      return (await hosts.list()).map((h) => ({ hostId: h.id, up: h.status === 'up' }));
    },

    /** Live container records by state and host (one GROUP BY). */
    containers: () => containerRepo.countLiveByStateAndHost(db),

    /** One of Berth's schedules, as Temporal describes it. */
    async schedule(scheduleId: string): Promise<ScheduleGauges> {
      const description = await temporal.withDeadline(Date.now() + DESCRIBE_TIMEOUT_MS, () => temporal.schedule.getHandle(scheduleId).describe());
      const last = description.info.recentActions.at(-1);
      return {
        scheduleId,
        lastRunAt: last?.takenAt ?? null,
        missedRuns: description.info.numActionsMissedCatchupWindow,
        paused: description.state.paused,
      };
    },
  };
}

export type GaugeService = ReturnType<typeof createGaugeService>;
