/** What the benchmarks share: the in-process app, a work pool, Docker streams and latency figures. */
import type Docker from 'dockerode';
import { baseConfig, buildTestApp } from '../test/support/app.js';
import type { App } from '../api/app.js';

export { pool } from '../core/pool.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The API in-process on the stack, as the tests build it; close() releases its clients. */
export async function benchApp(overrides: Parameters<typeof buildTestApp>[1] = {}): Promise<{ app: App; close: () => Promise<void> }> {
  const closers: Array<() => Promise<void>> = [];
  const app = await buildTestApp({ after: (fn: () => Promise<void>) => void closers.push(fn) }, {
    // A benchmark's user makes many requests in a minute; the limit is not what is measured.
    rateLimit: { max: 1_000_000, windowMs: 60_000 },
    pulls: { ...baseConfig.pulls, maxConcurrentPerUser: 100 },
    ...overrides,
  });
  return { app, close: async () => { for (const close of closers) await close(); } };
}

export { baseConfig };

/** Reads a Docker progress stream (pull, push) to its end; an `error` inside it fails. */
export async function drain(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) => {
      const failed = output?.find((m) => m.error);
      if (error || failed) reject(error ?? new Error(failed!.error));
      else resolve();
    }),
  );
}

/** Milliseconds `work` took. */
export async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

/** The p-th percentile (nearest rank) of the samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface Row {
  name: string;
  berth: number[];
  docker: number[];
}

const ms = (value: number) => `${value.toFixed(0)} ms`;

/** Prints case, Berth p50/p95, Docker p50/p95 and the ratios of both percentiles; `names` relabels the two sides. */
export function printTable(rows: Row[], names: { berth: string; docker: string } = { berth: 'berth', docker: 'docker' }) {
  const lines = [['case', 'runs', `${names.berth} p50`, `${names.berth} p95`, `${names.docker} p50`, `${names.docker} p95`, 'ratio p50', 'ratio p95']];
  for (const row of rows) {
    const [b50, b95, d50, d95] = [percentile(row.berth, 50), percentile(row.berth, 95), percentile(row.docker, 50), percentile(row.docker, 95)];
    lines.push([row.name, String(row.berth.length), ms(b50), ms(b95), ms(d50), ms(d95), (b50 / d50).toFixed(1), (b95 / d95).toFixed(1)]);
  }
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  for (const [i, line] of lines.entries()) {
    console.log(line.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}
