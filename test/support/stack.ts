/** The native stack's Docker daemons and Temporal, as tests reach them directly. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { dockerFromEndpoint } from '../../activities/docker-client.js';

export const stateDir = process.env.BERTH_STATE_DIR ?? join(homedir(), '.local', 'state', 'berth');
export const HOST_IDS = ['host-a', 'host-b'] as const;
export const dockerSocket = (hostId: string) => join(stateDir, 'docker', hostId, 'docker.sock');
export const dockerFor = (hostId: string) => dockerFromEndpoint(`unix://${dockerSocket(hostId)}`);
export const REGISTRY = '127.0.0.1:5000';
