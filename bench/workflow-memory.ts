/**
 * The control worker's memory per cached container workflow, without a stack:
 *   node --import tsx bench/workflow-memory.ts [cached=250,500,1000]
 * For each cache size, a fresh process (--expose-gc) runs that many settled container workflows
 * (a running container waiting for its next billing period) in one reusable V8 context, as the
 * worker does (test/support/workflow-vm.ts), and prints the JS heap each one adds after a full
 * GC. Two bundles of today's workflow code, alternating which goes first: as workers bundle it,
 * and without its preloaded modules, where each workflow evaluates workflows/otel-context-storage.ts
 * itself and so has a tracing storage of its own, as before 2026-12-07 (see README "Scaling").
 * The figure to watch: today's KB per workflow stays flat as the cache grows; the baseline's grows.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger } from '@temporalio/worker';
import { bundleWorkflows } from '../workers/workflow-code.js';
import { runningState, startContainer, workflowContext, type Workflow } from '../test/support/workflow-vm.js';

const heapUsed = () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the child with --expose-gc');
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage().heapUsed;
};

/** The child: `--child BUNDLE N` prints the heap per workflow, in bytes, as JSON. */
async function child(bundle: string, cached: number) {
  const context = await workflowContext(await readFile(bundle, 'utf8'), []);
  const keep: Workflow[] = [(await startContainer(context, -1, { state: runningState() })).workflow];
  const before = heapUsed();
  for (let i = 0; i < cached; i++) keep.push((await startContainer(context, i, { state: runningState() })).workflow);
  const after = heapUsed();
  process.stdout.write(`${JSON.stringify({ bytesPerWorkflow: (after - before) / cached, workflows: keep.length - 1 })}\n`);
}

function measure(bundle: string, cached: number): Promise<number> {
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script, '--child', bundle, String(cached)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve((JSON.parse(out) as { bytesPerWorkflow: number }).bytesPerWorkflow) : reject(new Error(`child exited ${code}`))));
  });
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]!, Number(process.argv[4]));
} else {
  const sizes = (process.argv[2] ?? '250,500,1000').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('cached: a comma-separated list of positive integers');
  const dir = await mkdtemp(join(tmpdir(), 'berth-workflow-memory-'));
  try {
    const logger = new DefaultLogger('WARN');
    const today = join(dir, 'today.js');
    const baseline = join(dir, 'storage-per-workflow.js');
    await writeFile(today, await bundleWorkflows({ logger }));
    await writeFile(baseline, await bundleWorkflows({ logger, preloadModules: [] }));
    console.log('cached runs | today: KB per workflow | a storage per workflow: KB per workflow | ratio');
    for (const [k, n] of sizes.entries()) {
      const order = k % 2 === 0 ? [today, baseline] : [baseline, today];
      const kb = new Map<string, number>();
      for (const bundle of order) kb.set(bundle, (await measure(bundle, n)) / 1024);
      const [t, b] = [kb.get(today)!, kb.get(baseline)!];
      console.log(`${n} | ${t.toFixed(0)} | ${b.toFixed(0)} | ${(t / b).toFixed(2)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
