/**
 * Dockerode clients for BERTH_DOCKER_HOST: unix:///path/to/docker.sock, or tcp://host:port with
 * mutual TLS (core/config.ts refuses plain TCP unless BERTH_DOCKER_ALLOW_PLAIN_TCP=true).
 */
import Docker from 'dockerode';
import type { DockerConfig, DockerTlsConfig } from '../core/config.js';

/**
 * Dockerode's connection options: plain data, so the save-gzip thread, which builds a client of
 * its own (activities/save-gzip-thread.ts), is handed them. PEM texts, not paths.
 */
export interface DockerConnection {
  socketPath?: string;
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * Every field is set, undefined ones too: dockerode fills what is missing from DOCKER_HOST,
 * DOCKER_CERT_PATH and DOCKER_TLS_VERIFY, and Berth's configuration is BERTH_* only.
 */
export function dockerConnectionFor(endpoint: string, tls: DockerTlsConfig | null = null): DockerConnection {
  const none = { socketPath: undefined, host: undefined, port: undefined, protocol: undefined, ca: undefined, cert: undefined, key: undefined };
  if (endpoint.startsWith('unix://')) return { ...none, socketPath: endpoint.slice('unix://'.length) };
  const url = new URL(endpoint);
  if (!tls) return { ...none, host: url.hostname, port: Number(url.port || 2375), protocol: 'http' };
  return { ...none, host: url.hostname, port: Number(url.port || 2376), protocol: 'https', ca: tls.ca, cert: tls.cert, key: tls.key };
}

/** The host worker's client for its daemon. */
export function dockerClient(config: DockerConfig): Docker {
  return new Docker(dockerConnectionFor(config.endpoint, config.tls));
}

/** A client for an endpoint without TLS (the tests' clients for the stack's sockets). */
export function dockerFromEndpoint(endpoint: string): Docker {
  return new Docker(dockerConnectionFor(endpoint));
}
