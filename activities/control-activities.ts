/** Everything the control worker registers on berth-control: the database activities. */
import type { Database } from '../db/client.js';

export function createControlActivities(_deps: { db: Database }) {
  return {};
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
