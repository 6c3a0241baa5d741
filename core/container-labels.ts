/** Labels Berth puts on its containers so that it can find its own. No imports. */
export const LABEL_ID = 'io.berth.container-id';
export const LABEL_USER = 'io.berth.user-id';

/** Docker's name for a Berth container. */
export const dockerName = (containerId: string) => `berth-${containerId}`;
