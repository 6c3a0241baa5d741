/**
 * DCU cost, quota and disk rules: pure functions (no imports), used by the API's start,
 * the charge activity and the host's compress activity, and tested on their own.
 */

export const MB = 1024 * 1024;
/** A "GB" of the DCU price: 1024³ bytes, as MB is 1024² everywhere in Berth. */
export const GB = 1024 * MB;

/** What a DCU task costs: every started GB of the `docker save` tar at the per-GB price (0 bytes: 0). */
export function dcuCharge(tarBytes: number, pricePerGb: number): number {
  if (!Number.isSafeInteger(tarBytes) || tarBytes < 0) throw new RangeError(`tar size must be a non-negative integer, got ${tarBytes}`);
  return Math.ceil(tarBytes / GB) * pricePerGb;
}

/** MB to one decimal, for messages. */
export const mb = (bytes: number) => Math.round((bytes / MB) * 10) / 10;

/** The quota refusal's message when `usedBytes` has reached the quota; null while there is room. */
export function quotaRefusal(usedBytes: number, quotaMb: number): string | null {
  if (usedBytes < quotaMb * MB) return null;
  return `DCU storage quota reached: your stored archives use ${mb(usedBytes)} MB of your ${quotaMb} MB quota; new tasks start once older archives expire.`;
}

/**
 * The free-disk guard of a host: null when `freeBytes` (what an unprivileged writer may
 * still use on the archive directory's filesystem) is at least `minFreeMb`, else the reason
 * the host refuses new DCU work. The path is not named: the message reaches users.
 */
export function diskRefusal(hostId: string, freeBytes: number, minFreeMb: number): string | null {
  if (freeBytes >= minFreeMb * MB) return null;
  return `host ${hostId} refuses new DCU work: its archive disk has ${mb(freeBytes)} MB free, less than the ${minFreeMb} MB it keeps free (BERTH_DCU_MIN_FREE_MB)`;
}
