/** Everything the control worker registers on berth-control: the database activities. */
import type { Database } from '../db/client.js';
import { createLedger } from '../services/ledger.js';
import { createImageDbActivities } from './images-db.js';
import { createContainerDbActivities } from './containers-db.js';

export function createControlActivities(deps: { db: Database; pricePerMb: number }) {
  const ledger = createLedger(deps.db);
  return {
    ...createImageDbActivities({ db: deps.db, ledger, pricePerMb: deps.pricePerMb }),
    ...createContainerDbActivities({ db: deps.db, ledger }),
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
