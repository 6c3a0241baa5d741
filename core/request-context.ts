/**
 * The request a piece of the API's work belongs to, without passing it down every call: the API
 * runs each request's validation, hooks and handler inside runWithRequestId (api/app.ts), and the
 * Temporal client's interceptor (core/request-id-client-interceptor.ts) reads it when a service
 * starts a workflow. Node's AsyncLocalStorage: never imported by workflow code.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const storage = new AsyncLocalStorage<{ requestId: string }>();

/** Runs `fn` (and whatever it starts, synchronously or not) as part of request `requestId`. */
export function runWithRequestId<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId }, fn);
}

/** The id of the request the caller runs for, if it runs for one. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}
