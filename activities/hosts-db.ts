/** Host activities on berth-control: the hosts the database knows, for the sweeps that visit each. */
import type { Database } from '../db/client.js';
import { listHostIds } from '../repositories/hosts.js';

export function createHostDbActivities(deps: { db: Database }) {
  const { db } = deps;
  /** Registered host ids, the most recently alive first (the order the sweeps try them in). */
  const list = (): Promise<string[]> => listHostIds(db);
  return {
    listHostIds: list,
    /**
     * The old name of listHostIds: release and cleanup runs started before the rename still
     * schedule it (workflows take the new name under a patch). Remove with those patches.
     */
    dcuListHosts: list,
  };
}

export type HostDbActivities = ReturnType<typeof createHostDbActivities>;
