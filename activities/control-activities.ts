/** Everything the control worker registers on berth-control: the database activities. */
import type { Database } from '../db/client.js';
import { createImageDbActivities } from './images-db.js';
import { createContainerDbActivities } from './containers-db.js';
import { createDcuDbActivities } from './dcu-db.js';
import { createReleaseActivities } from './release.js';
import { createHostDbActivities } from './hosts-db.js';
import { createAuditDbActivities } from './audit-db.js';
import type { Client } from '@temporalio/client';

export function createControlActivities(deps: { db: Database; pricePerMb: number; temporal: Client }) {
  return {
    ...createImageDbActivities({ db: deps.db, pricePerMb: deps.pricePerMb, temporal: deps.temporal }),
    ...createContainerDbActivities({ db: deps.db }),
    ...createDcuDbActivities({ db: deps.db }),
    ...createReleaseActivities({ db: deps.db, temporal: deps.temporal }),
    // Also registers dcuListHosts, the former name of listHostIds (runs started before the rename schedule it).
    ...createHostDbActivities({ db: deps.db }),
    ...createAuditDbActivities({ db: deps.db }),
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
