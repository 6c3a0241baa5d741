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
