/** Waiting in tests: a pause, and polling a probe until it holds. */

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` every 250 ms until it returns a truthy value, and returns that value;
 * throws "timed out waiting for <what>" after `seconds`.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, seconds = 30): Promise<T> {
  for (let i = 0; i < seconds * 4; i++) {
    const value = await probe();
    if (value) return value;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}
