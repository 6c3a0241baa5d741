/**
 * What the cluster tests share: the cluster mode's addresses (scripts/stack-cluster.sh), the
 * API process as the tests' helpers expect an app (they only call `inject`), and the stack's
 * own commands for its processes and its Temporal CLI.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { App } from '../../api/app.js';

/** The root namespace's end of host-c's link, where host-c reaches every service. */
export const GATEWAY_IP = '10.213.0.1';
/** host-c's address: its containers publish their ports here. */
export const HOST_C_IP = '10.213.0.2';
/** The link's end in the root namespace: down, host-c is cut off. */
export const HOST_C_LINK = 'berth-c0';
/** The stack's registry as host-c reaches it. */
export const REGISTRY_C = `${GATEWAY_IP}:5000`;
export const HTTPD_C = `${REGISTRY_C}/library/httpd:latest`;
export const BUSYBOX_C = `${REGISTRY_C}/library/busybox:1.35`;
export const API_URL = `http://127.0.0.1:${process.env.BERTH_API_PORT ?? 8080}`;

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

interface InjectOptions {
  method: string;
  url: string;
  headers?: Record<string, string>;
  payload?: unknown;
}

/**
 * The cluster's API process behind `inject`, the one method of a Fastify app the test helpers
 * call (createUser, pull, run, startTask, ...): every request goes over HTTP to the real API.
 */
export function remoteApp(base = API_URL): App {
  async function inject(opts: InjectOptions) {
    const headers: Record<string, string> = { ...opts.headers };
    let body: string | undefined;
    if (opts.payload !== undefined) {
      body = typeof opts.payload === 'string' ? opts.payload : JSON.stringify(opts.payload);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${base}${opts.url}`, { method: opts.method, headers, body, redirect: 'manual' });
    const text = await res.text();
    return {
      statusCode: res.status,
      body: text,
      headers: Object.fromEntries(res.headers),
      json: <T = unknown>() => JSON.parse(text) as T,
    };
  }
  return { inject } as unknown as App;
}

/** `scripts/stack.sh ARGS...`, its output. */
export async function stack(...args: string[]): Promise<string> {
  const { stdout } = await run('bash', ['scripts/stack.sh', ...args], { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** The Temporal CLI against the cluster (through its load balancer, with the stack's client certificate). */
export const temporalCli = (...args: string[]) => stack('temporal', ...args);

export async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}
