import Docker from 'dockerode';

/** A dockerode client for BERTH_DOCKER_HOST: unix:///path/to/docker.sock or tcp://host:port. */
export function dockerFromEndpoint(endpoint: string): Docker {
  if (endpoint.startsWith('unix://')) return new Docker({ socketPath: endpoint.slice('unix://'.length) });
  const url = new URL(endpoint);
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
}
