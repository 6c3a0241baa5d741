/** Temporal Schedule ids, defined once. */
export const RELEASE_SCHEDULE_ID = 'berth-nightly-release';
