/** What the console derives from a container: its address, the operations its state allows. */
import type { Container } from '../api/types';

/** The URL of its published port (an unspecified address is this host's). */
export function addressOf(container: Container): { href: string; text: string } | null {
  if (!container.hostPort || container.removedAt) return null;
  const ip = !container.hostIp || container.hostIp === '0.0.0.0' || container.hostIp === '::' ? window.location.hostname : container.hostIp;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { href: `http://${host}:${container.hostPort}/`, text: `${host}:${container.hostPort}` };
}

export type Operation = 'start' | 'stop' | 'restart';

/** The states each operation applies to (core/container-state.ts's transitions). */
const ALLOWED: Record<Operation | 'remove', readonly string[]> = {
  start: ['stopped', 'exited', 'suspended'],
  stop: ['running'],
  restart: ['running'],
  remove: ['creating', 'running', 'stopped', 'suspended', 'exited', 'failed'],
};

export const allows = (container: Container, operation: Operation | 'remove') => !container.removedAt && ALLOWED[operation].includes(container.state);
