/**
 * Berth's Temporal connections: the client (the API, the workers' own clients) and the options
 * every connection takes, the workers' NativeConnection included (workers/run-worker.ts), so
 * that TLS and the API key are set in one place.
 */
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { TemporalConfig } from './config.js';
import { requestIdClientInterceptor } from './request-id-client-interceptor.js';
import { tracingClientInterceptors, type Tracing } from './tracing.js';

/** What `Connection.connect` and `NativeConnection.connect` both take: the address, TLS, the API key. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

export function temporalConnectionOptions(config: TemporalConfig): TemporalConnectionOptions {
  const { tls } = config;
  return {
    address: config.address,
    ...(tls
      ? {
          tls: {
            ...(tls.serverName !== undefined ? { serverNameOverride: tls.serverName } : {}),
            ...(tls.ca !== undefined ? { serverRootCACertificate: Buffer.from(tls.ca) } : {}),
            ...(tls.client ? { clientCertPair: { crt: Buffer.from(tls.client.cert), key: Buffer.from(tls.client.key) } } : {}),
          },
        }
      : {}),
    ...(config.apiKey !== undefined ? { apiKey: config.apiKey } : {}),
  };
}

/** A client; with `tracing`, the workflows it starts continue the caller's trace (core/tracing.ts). */
export async function connectTemporal(config: TemporalConfig, opts: { tracing?: Tracing | null } = {}): Promise<Client> {
  const connection = await Connection.connect(temporalConnectionOptions(config));
  return new Client({
    connection,
    namespace: config.namespace,
    // A workflow started while the API serves a request carries the request's id (core/request-id-header.ts), and its trace.
    interceptors: { workflow: [requestIdClientInterceptor, ...tracingClientInterceptors(opts.tracing)] },
  });
}
