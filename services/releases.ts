/** Nightly releases for admins: the schedule, its runs and their reports. */
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { Database } from '../db/client.js';
import { notFound, unavailable } from '../core/errors.js';
import { RELEASE_SCHEDULE_ID, type ReleaseReport } from '../contracts/nightly-release.js';
import type { PageRequest } from '../repositories/paging.js';
import * as repo from '../repositories/releases.js';

export function createReleaseService(deps: { db: Database; temporal: Client }) {
  const { db, temporal } = deps;
  const schedule = () => temporal.schedule.getHandle(RELEASE_SCHEDULE_ID);

  const summary = (row: repo.ReleaseRunRow) => {
    const report = row.report as unknown as ReleaseReport | null;
    return {
      id: row.id,
      status: row.status,
      startedAt: row.startedAt,
      endedAt: row.endedAt,
      refundedTotal: row.refundedTotal,
      containers: report?.containers ?? null,
      images: report?.images ?? null,
    };
  };

  return {
    async overview(page: PageRequest) {
      let scheduleInfo;
      try {
        const described = await schedule().describe();
        scheduleInfo = {
          id: RELEASE_SCHEDULE_ID,
          paused: described.state.paused,
          note: described.state.note ?? null,
          timezone: described.spec.timezone ?? 'UTC',
          nextRuns: described.info.nextActionTimes.slice(0, 5),
        };
      } catch (error) {
        if (!(error instanceof ScheduleNotFoundError)) throw error;
        scheduleInfo = null;
      }
      const { items, total } = await repo.runsPage(db, page);
      return { schedule: scheduleInfo, items: items.map(summary), total };
    },

    async get(id: string) {
      const row = await repo.findRun(db, id);
      if (!row) throw notFound('Release');
      const report = row.report as unknown as ReleaseReport | null;
      return { ...summary(row), failures: report?.failures ?? [] };
    },

    /** Runs the schedule's action now (overlap policy SKIP: a running release is not doubled). */
    async trigger() {
      try {
        await schedule().trigger();
      } catch (error) {
        if (error instanceof ScheduleNotFoundError) throw unavailable('The release schedule does not exist yet: is the control worker running?');
        throw error;
      }
    },
  };
}

export type ReleaseService = ReturnType<typeof createReleaseService>;
