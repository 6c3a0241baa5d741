/**
 * The control worker's workflow code: workflows/index.ts, which the Temporal SDK bundles (webpack)
 * into the code its workflow sandboxes run. Without BERTH_WORKFLOW_BUNDLE the worker bundles it as
 * it starts (the native stack: edit, restart); an image bundles it once at build
 * (workers/bundle-workflows.ts) and its workers load that file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bundleWorkflowCode, type Logger, type WorkerOptions } from '@temporalio/worker';
import { workflowMetricsSinks } from './workflow-metrics.js';
import { REPO_ROOT } from '../core/source-root.js';

export const WORKFLOWS_PATH = join(REPO_ROOT, 'workflows', 'index.ts');

/**
 * The workflow interceptor modules bundled with the workflows, in every bundle (one made at a
 * worker's start, withWorkflowInterceptors; one made ahead, writeWorkflowBundle; the replay
 * test's): whatever a worker's settings, its workflows run the same code.
 */
export const WORKFLOW_INTERCEPTOR_MODULES: string[] = [
  // The request id: from the start's header on to every activity, child and continued run, and into log lines.
  join(REPO_ROOT, 'workflows', 'request-id-interceptors.ts'),
  // Tracing (workflows/tracing-interceptors.ts): spans out through the `exporter` sink.
  join(REPO_ROOT, 'workflows', 'tracing-interceptors.ts'),
  // A pull's, a DCU task's and a release's end, as metrics, through the `berthMetrics` sink (workers/workflow-metrics.ts).
  join(REPO_ROOT, 'workflows', 'metrics-interceptor.ts'),
];

/**
 * Modules the SDK evaluates once, in the V8 context all of a worker's workflows share, instead of
 * once per workflow (bundleWorkflowCode's preloadModules): only modules that hold no workflow's
 * state and import nothing at run time (a preloaded module's imports are shared and frozen too).
 */
export const WORKFLOW_PRELOAD_MODULES: string[] = [
  // The one storage of every workflow's tracing context (a storage per workflow cost memory growing with the square of the cache).
  join(REPO_ROOT, 'workflows', 'otel-context-storage.ts'),
];

/**
 * Worker options for Berth's workflow code: a worker that bundles workflows at start
 * (`workflowsPath`) gets the interceptor and preloaded modules too (a prebuilt bundle has them already), and
 * any worker that runs workflows gets the sinks they call (the metrics' `berthMetrics`; the
 * options' own sinks win). A worker without workflows needs neither.
 */
export function withWorkflowInterceptors<O extends Partial<WorkerOptions>>(options: O): O {
  if (!options.workflowsPath && !options.workflowBundle) return options;
  const sinks = { ...workflowMetricsSinks(), ...options.sinks };
  if (!options.workflowsPath) return { ...options, sinks };
  const own = options.interceptors?.workflowModules ?? [];
  const preload = options.bundlerOptions?.preloadModules ?? [];
  return {
    ...options,
    sinks,
    interceptors: { ...options.interceptors, workflowModules: [...WORKFLOW_INTERCEPTOR_MODULES, ...own] },
    bundlerOptions: { ...options.bundlerOptions, preloadModules: [...WORKFLOW_PRELOAD_MODULES, ...preload] },
  };
}

/**
 * Berth's workflow code as a worker runs it: workflows/, its interceptor modules and its
 * preloaded modules (bench/workflow-memory.ts measures against a bundle without them).
 */
export async function bundleWorkflows(opts: { logger?: Logger; preloadModules?: string[] } = {}): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    preloadModules: opts.preloadModules ?? WORKFLOW_PRELOAD_MODULES,
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  return code;
}

/** Bundles workflows/ into `codePath` (made with its directory); resolves to the bundle's size in bytes. */
export async function writeWorkflowBundle(codePath: string): Promise<number> {
  const code = await bundleWorkflows();
  await mkdir(dirname(codePath), { recursive: true });
  await writeFile(codePath, code);
  return Buffer.byteLength(code);
}
