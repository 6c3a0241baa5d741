/** Byte sizes as Berth shows them: MB is 1024², GB 1024³. No imports. */

export const MB = 1024 * 1024;
export const GB = 1024 * MB;

/** Size in MB to one decimal, as the original platform showed it. */
export function sizeMb(bytes: number): number {
  return Math.round((bytes / MB) * 10) / 10;
}

/** The same, for messages. */
export const mb = sizeMb;
