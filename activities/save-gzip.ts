/**
 * `docker save <reference> | gzip > <path>` in a worker thread (activities/save-gzip-thread.ts):
 * the tar streamed from the Docker API through the parallel gzip into the file, sizes and
 * the archive's sha256 computed on the way. The caller's thread only sees progress and
 * the outcome, so the host worker's own heap is not churned by the image's bytes.
 */
import { Worker } from 'node:worker_threads';
import type Docker from 'dockerode';
import { dockerConnectionFor, type DockerConnection } from './docker-client.js';

/** What the thread needs: plain data, cloned into it. */
export interface SaveGzipJob {
  /** Dockerode's connection options (socketPath, or host and port, and TLS's PEM texts). */
  docker: DockerConnection;
  reference: string;
  /** The file written; removed by the thread if it fails or is aborted. */
  path: string;
  level: number;
  progressEveryMs: number;
  /** Post each write that reached the file ('written'): the caller uploads the file as it grows. */
  reportWritten?: boolean;
}

/** What the caller sends a thread: its one job, then perhaps an abort. */
export type SaveGzipCommand = { type: 'job'; job: SaveGzipJob } | { type: 'abort' };

/** What a thread sends: 'ready' once booted, then progress and one outcome. */
export type SaveGzipMessage =
  | { type: 'ready' }
  | { type: 'progress'; sizeBytes: number; compressedBytes: number }
  | { type: 'written'; bytes: number }
  | { type: 'done'; sizeBytes: number; compressedBytes: number; sha256: string }
  | { type: 'failed'; aborted: boolean; message: string; statusCode?: number };

export interface SaveGzipResult {
  sizeBytes: number;
  compressedBytes: number;
  sha256: string;
}

/** The thread failed: Docker's message and HTTP status, as dockerode gives them. */
export class SaveGzipError extends Error {
  constructor(
    message: string,
    readonly statusCode: number | undefined,
    readonly aborted: boolean,
  ) {
    super(message);
    this.name = 'SaveGzipError';
  }
}

/**
 * Dockerode's connection options, for a second client in the thread: the endpoint and TLS
 * (CA, certificate and key) the given client was made with.
 */
export function dockerConnection(docker: Docker): DockerConnection {
  const modem = docker.modem as { socketPath?: unknown; host?: string; port?: number | string; protocol?: string; ca?: unknown; cert?: unknown; key?: unknown };
  if (typeof modem.socketPath === 'string') return dockerConnectionFor(`unix://${modem.socketPath}`);
  const endpoint = `tcp://${modem.host}${modem.port === undefined ? '' : `:${modem.port}`}`;
  if (modem.protocol !== 'https') return dockerConnectionFor(endpoint);
  const pem = (value: unknown, what: string) => {
    if (typeof value === 'string') return value;
    if (Buffer.isBuffer(value)) return value.toString('utf8');
    throw new Error(`the Docker client's TLS ${what} is not PEM text: it cannot be handed to the compression thread`);
  };
  return dockerConnectionFor(endpoint, { ca: pem(modem.ca, 'CA'), cert: pem(modem.cert, 'certificate'), key: pem(modem.key, 'key') });
}

/**
 * Run as TypeScript through tsx (the workers' way), the thread's file is the .ts beside this
 * one, and tsx's loader is registered in the thread first: a thread does not inherit it.
 */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const THREAD = new URL(`./save-gzip-thread.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url);
const startThread = () =>
  FROM_SOURCE
    ? new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(THREAD.href)}); });`, { eval: true })
    : new Worker(THREAD);

/** Threads that have exited: a spare that died while waiting is not handed a job. */
const exited = new WeakSet<Worker>();

/** A thread that has loaded its modules and waits for its job (it posts 'ready'). */
function bootThread(): Promise<Worker> {
  return new Promise<Worker>((resolve, reject) => {
    const worker = startThread();
    worker.unref(); // an idle spare never keeps the process alive
    worker.on('error', () => undefined); // reported through 'exit' and the job's own listeners
    worker.once('exit', (code) => {
      exited.add(worker);
      reject(new Error(`the compression thread exited with code ${code} before it was ready`));
    });
    worker.once('message', () => resolve(worker));
  });
}

/**
 * One thread booted ahead of need: loading dockerode (and, from source, tsx) in a new thread
 * takes some 0.3 s, which a job would otherwise wait for. Each job takes the spare (or boots
 * one); a thread runs one job and exits, and the next spare boots once it has: while a job
 * runs there is one thread (one V8 heap) in the host worker, not two. A job that starts while
 * another runs boots its own thread.
 */
let spare: Promise<Worker> | undefined;

function spareThread(): Promise<Worker> {
  const next = bootThread();
  next.catch(() => {
    if (spare === next) spare = undefined;
  });
  return next;
}

/** Boots the spare thread now (a host worker does this at start), so the first job does not wait either. */
export function prewarmSaveGzip(): void {
  spare ??= spareThread();
}

async function takeThread(): Promise<Worker> {
  const ready = spare;
  spare = undefined;
  let worker = await ready?.catch(() => null);
  if (!worker || exited.has(worker)) worker = await bootThread();
  worker.ref();
  return worker;
}

/**
 * Runs one save-and-compress in its own thread. `signal` aborts it: the thread tears the
 * pipeline down and removes the file before this rejects with `aborted` set.
 */
export async function saveGzip(
  job: SaveGzipJob,
  options: {
    signal?: AbortSignal;
    onProgress?: (progress: { sizeBytes: number; compressedBytes: number }) => void;
    /** Bytes of the file written so far (with `job.reportWritten`). */
    onWritten?: (bytes: number) => void;
  } = {},
): Promise<SaveGzipResult> {
  const worker = await takeThread();
  return new Promise<SaveGzipResult>((resolve, reject) => {
    let outcome: SaveGzipMessage | undefined;
    const onAbort = () => worker.postMessage({ type: 'abort' } satisfies SaveGzipCommand);
    worker.on('message', (message: SaveGzipMessage) => {
      if (message.type === 'progress') options.onProgress?.(message);
      else if (message.type === 'written') options.onWritten?.(message.bytes);
      else if (message.type !== 'ready') outcome = message;
    });
    let error: Error | undefined;
    worker.on('error', (e) => {
      error = e;
    });
    // The outcome counts once the thread has exited: by then its file is closed (or removed).
    worker.on('exit', () => {
      options.signal?.removeEventListener('abort', onAbort);
      prewarmSaveGzip();
      if (outcome?.type === 'done') resolve({ sizeBytes: outcome.sizeBytes, compressedBytes: outcome.compressedBytes, sha256: outcome.sha256 });
      else if (outcome?.type === 'failed') reject(new SaveGzipError(outcome.message, outcome.statusCode, outcome.aborted));
      else reject(new SaveGzipError(`the compression thread stopped: ${error?.message ?? 'no outcome'}`, undefined, false));
    });
    worker.postMessage({ type: 'job', job } satisfies SaveGzipCommand);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
