/**
 * Not a workflow: the workflow interceptors of tracing, bundled with the workflows
 * (workers/workflow-code.ts WORKFLOW_INTERCEPTOR_MODULES) so that every workflow continues the
 * trace its starter put in its headers (core/tracing.ts): a RunWorkflow span, and a
 * StartActivity span whose context travels in each activity's headers to the worker that runs
 * it. Spans leave the sandbox through the `exporter` sink (workers/worker-tracing.ts), which drops
 * them when the worker has no tracing: the bundle is the same either way, so turning tracing on
 * or off never changes the code a workflow replays on.
 *
 * They emit no command and touch no workflow state: the commands of a workflow are the same with
 * them as without (test/unit/replay.test.ts replays histories recorded before they existed).
 */
import type { WorkflowInterceptors } from '@temporalio/workflow';
import { ROOT_CONTEXT, context as otelContext, type Context, type ContextManager } from '@opentelemetry/api';
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow/index.js';
import { otelContextStorage } from './otel-context-storage.js';

/**
 * The SDK's workflow context manager (interceptors-opentelemetry's ContextManager), over the
 * storage all workflows share (workflows/otel-context-storage.ts) instead of one of its own.
 */
class SharedStorageContextManager implements ContextManager {
  active(): Context {
    return otelContextStorage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const cb = thisArg == null ? fn : (fn.bind(thisArg) as F);
    return otelContextStorage.run(context, cb, ...args);
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') throw new TypeError(`Only function binding is supported, got ${typeof target}`);
    const fn = target as (...args: unknown[]) => unknown;
    const bound = function (this: unknown, ...args: unknown[]) {
      return otelContextStorage.run(context, () => fn.apply(this, args));
    };
    Object.defineProperty(bound, 'length', { enumerable: false, configurable: true, writable: false, value: fn.length });
    return bound as T;
  }

  enable(): this {
    return this;
  }

  /** Leaves the shared storage on: the other workflows' contexts are in it. */
  disable(): this {
    return this;
  }
}

export const interceptors = (): WorkflowInterceptors => {
  // The first one registers the SDK's tracer provider and context manager in this workflow's
  // OpenTelemetry globals; the context manager is then swapped for the shared storage's before
  // any span is started (the SDK's own never enables its storage, and costs nothing).
  const inbound = new OpenTelemetryInboundInterceptor();
  const outbound = new OpenTelemetryOutboundInterceptor();
  otelContext.disable();
  otelContext.setGlobalContextManager(new SharedStorageContextManager());
  return {
    inbound: [inbound],
    outbound: [outbound],
    internals: [new OpenTelemetryInternalsInterceptor()],
  };
};
