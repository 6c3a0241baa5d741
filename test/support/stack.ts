/** The native stack's Docker daemons and Temporal, as tests reach them directly. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { dockerFromEndpoint } from '../../activities/docker-client.js';
import { sleep } from './wait.js';

export const stateDir = process.env.BERTH_STATE_DIR ?? join(homedir(), '.local', 'state', 'berth');
export const HOST_IDS = ['host-a', 'host-b'] as const;
export const dockerSocket = (hostId: string) => join(stateDir, 'docker', hostId, 'docker.sock');
export const dockerFor = (hostId: string) => dockerFromEndpoint(`unix://${dockerSocket(hostId)}`);
export const REGISTRY = '127.0.0.1:5000';
/** The cluster mode's Docker host in a network namespace (scripts/stack-cluster.sh). */
export const CLUSTER_HOST_IDS = ['host-a', 'host-c'] as const;
/** The stack's registry as a host reaches it: host-c (cluster mode) at the gateway address. */
export const registryFor = (hostId: string) => (hostId === 'host-c' ? '10.213.0.1:5000' : REGISTRY);
/** A reference into the stack's registry, named as `hostId` reaches it. */
export const asSeenBy = (hostId: string, reference: string) => reference.replace(/^127\.0\.0\.1:5000\//, `${registryFor(hostId)}/`);
/** The temporal CLI that scripts/stack.sh installs. */
export const TEMPORAL_CLI = join(process.env.BERTH_TOOLS_DIR ?? join(homedir(), '.cache', 'berth'), 'bin', 'temporal');

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The pid of one of the stack's processes (e.g. `worker-host-a`, `minio`), from its pid file. */
export async function stackPid(name: string): Promise<number> {
  return Number((await readFile(join(stateDir, 'run', `${name}.pid`), 'utf8')).trim());
}

/** Waits until the process is gone. */
export async function processGone(pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
      await sleep(100);
    } catch {
      return;
    }
  }
  throw new Error(`pid ${pid} did not die`);
}

/** SIGKILLs one of the stack's processes and waits until it is gone. */
export async function killStackProcess(name: string): Promise<void> {
  const pid = await stackPid(name);
  process.kill(pid, 'SIGKILL');
  await processGone(pid);
}

/**
 * `scripts/stack.sh start <name>`: starts that one process (minio, api, worker-control,
 * worker-host-<id>) if it is not running, and nothing else: a test that stopped it brings it back
 * without touching what another lane of the serial pass stopped.
 */
export async function stackStart(name: string): Promise<void> {
  await promisify(execFile)('bash', ['scripts/stack.sh', 'start', name], { cwd: repoRoot });
}
