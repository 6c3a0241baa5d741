/**
 * Not a workflow: the one AsyncLocalStorage that holds the OpenTelemetry context of every
 * workflow a worker runs (workflows/tracing-interceptors.ts). The workflow bundle preloads this
 * module (workers/workflow-code.ts WORKFLOW_PRELOAD_MODULES): the SDK evaluates it once, before
 * any workflow, in the V8 context all workflows share, where every other module is evaluated
 * again for each workflow.
 *
 * Why one: @temporalio/interceptors-opentelemetry gives each workflow a context manager with an
 * AsyncLocalStorage of its own, and on Node 20 each enabled AsyncLocalStorage puts a property
 * on every promise created while it is enabled. Each of a cached workflow's pending promises
 * then held one property per cached workflow: the control worker's memory grew with the square
 * of its cache (README "Scaling"). With one storage a promise holds one. A store follows its own
 * async chain, so sharing the storage shares no context between workflows (the SDK shares its
 * cancellation scopes' storage the same way).
 *
 * Nothing here may import a module at run time: a preloaded module's imports are preloaded with
 * it, shared by all workflows and frozen (@opentelemetry/api's singletons would break).
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from '@opentelemetry/api';

/** The sandbox's AsyncLocalStorage, which the SDK puts on the workflow context's globalThis. */
const Storage = (globalThis as unknown as { AsyncLocalStorage: typeof AsyncLocalStorage }).AsyncLocalStorage;

// Module scope, not exported: the SDK freezes a preloaded module's exports, and a frozen
// AsyncLocalStorage cannot enable itself.
const storage = new Storage<Context>();

/** The shared storage's two operations a context manager needs; it is never disabled. */
export const otelContextStorage = {
  getStore: (): Context | undefined => storage.getStore(),
  run: <A extends unknown[], R>(context: Context, fn: (...args: A) => R, ...args: A): R => storage.run(context, fn, ...args),
};
