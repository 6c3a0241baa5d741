/**
 * What things cost, in integer minor units: images by size, containers by resources per
 * billing period, DCU archives by size. Pure functions (no imports): the API quotes and fixes
 * prices with them, the control worker's charges apply the price the request was started with.
 */

const MB = 1024 * 1024;
/** A "GB" of the DCU price: 1024³ bytes, as MB is 1024² everywhere in Berth. */
const GB = 1024 * MB;

/** What an image costs: every started MB at the per-MB price. */
export function imageCharge(bytes: number, pricePerMb: number): number {
  return Math.ceil(bytes / MB) * pricePerMb;
}

/** What a container's resources cost per billing period, in minor units. */
export interface ContainerPriceList {
  base: number;
  perCpu: number;
  perGbMemory: number;
}

/**
 * A container's price per billing period: the base, plus the CPUs and the memory it asks
 * for at their prices, the resource part rounded up to a whole minor unit.
 * cpuMillis is thousandths of a CPU (500 = 0.5 CPU); memory is in MB (1024 per GB).
 */
export function containerPricePerPeriod(resources: { cpuMillis: number; memoryMb: number }, prices: ContainerPriceList): number {
  // Both parts over the common denominator 1000 × 1024, so the sum is rounded once.
  const numerator = resources.cpuMillis * prices.perCpu * 1024 + resources.memoryMb * prices.perGbMemory * 1000;
  return prices.base + Math.ceil(numerator / (1000 * 1024));
}

/** What a DCU task costs: every started GB of the `docker save` tar at the per-GB price (0 bytes: 0). */
export function dcuCharge(tarBytes: number, pricePerGb: number): number {
  if (!Number.isSafeInteger(tarBytes) || tarBytes < 0) throw new RangeError(`tar size must be a non-negative integer, got ${tarBytes}`);
  return Math.ceil(tarBytes / GB) * pricePerGb;
}
