/** A port nothing listens on: for the Temporal SDK's metrics exporter (workers/sdk-runtime.ts), tests and benches. */
import { createServer } from 'node:net';

/** A port free on `address` a moment ago (the kernel's ephemeral range: outside Berth's). */
export function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
