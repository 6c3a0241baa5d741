/** Bounded concurrency: work over many items, at most `width` at a time, in the items' order. */

/** Runs `work` over `items`, at most `width` at a time; rejects with the first error once all have settled or stopped. */
export async function pool<T>(items: readonly T[], width: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  }));
}
