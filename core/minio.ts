/** A MinIO client from Berth's MinIO settings (the API presigns with it, host workers upload). */
import { Client } from 'minio';
import type { MinioConfig } from './config.js';

export function minioClient(config: MinioConfig): Client {
  return new Client({
    endPoint: config.endPoint,
    port: config.port,
    useSSL: config.useSSL,
    accessKey: config.accessKey,
    secretKey: config.secretKey,
    // A fixed region: presigning then needs no round trip to ask the server for it.
    region: 'us-east-1',
  });
}
