/**
 * DCU quota and disk rules: pure functions (no imports), used by the API's start and the host's
 * compress activity, and tested on their own. What a task costs is billing/prices.ts's dcuCharge.
 */
import { MB, mb } from './sizes.js';

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
