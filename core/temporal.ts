/** A Temporal client for the API (workers use NativeConnection in workers/). */
import { Client, Connection } from '@temporalio/client';
import type { TemporalConfig } from './config.js';

export async function connectTemporal(config: TemporalConfig): Promise<Client> {
  const connection = await Connection.connect({ address: config.address });
  return new Client({ connection, namespace: config.namespace });
}
