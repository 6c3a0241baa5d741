/** Everything the control worker registers on berth-control: the database activities. */
import type { Database } from '../db/client.js';
import { createLedger } from '../services/ledger.js';
import { createImageDbActivities } from './images-db.js';
import { createContainerDbActivities } from './containers-db.js';
import { createDcuDbActivities } from './dcu-db.js';
import { createReleaseActivities } from './release.js';
import type { Client } from '@temporalio/client';

export function createControlActivities(deps: { db: Database; pricePerMb: number; temporal: Client }) {
  const ledger = createLedger(deps.db);
  return {
    ...createImageDbActivities({ db: deps.db, ledger, pricePerMb: deps.pricePerMb }),
    ...createContainerDbActivities({ db: deps.db, ledger }),
    ...createDcuDbActivities({ db: deps.db, ledger }),
    ...createReleaseActivities({ db: deps.db, temporal: deps.temporal }),
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
