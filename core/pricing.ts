/** Image sizes and prices. Money is integer minor units; sizes are bytes. */

const MB = 1024 * 1024;

/** Size in MB to one decimal, as the original platform showed it. */
export function sizeMb(bytes: number): number {
  return Math.round((bytes / MB) * 10) / 10;
}

/** What an image costs: every started MB at the per-MB price. */
export function imageCharge(bytes: number, pricePerMb: number): number {
  return Math.ceil(bytes / MB) * pricePerMb;
}
