/**
 * The scale bench's baseline: the same containers created with plain Docker (dockerode
 * create + start) on the same daemons, at the same concurrency, then removed (untimed).
 * Docker's side runs on each daemon's default bridge, without Berth's per-user networks.
 * The image is pulled on every daemon first (untimed).
 */
import { randomUUID } from 'node:crypto';
import { dockerFromEndpoint } from '../activities/docker-client.js';
import { drain, percentile, pool } from './support.js';

export interface DockerBaseline {
  ok: number;
  failed: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p95Ms: number;
}

/** `hosts[i]`: the daemon's socket and the address it publishes on; container i goes to host i mod N. */
export async function dockerBaseline(
  hosts: Array<{ socket: string; publishIp: string }>,
  spec: { image: string; cmd: string[]; memoryMb: number; cpus: number; count: number; concurrency: number },
): Promise<DockerBaseline> {
  const dockers = hosts.map((h) => ({ docker: dockerFromEndpoint(`unix://${h.socket}`), publishIp: h.publishIp }));
  const made: Array<{ host: number; id: string }> = [];
  const samples: number[] = [];
  let failed = 0;
  const run = `scale-baseline-${randomUUID().slice(0, 8)}`;
  // Untimed: the image on every daemon (after a release, Berth has removed it).
  await Promise.all(dockers.map(async ({ docker }) => drain(docker, await docker.pull(spec.image))));
  const start = performance.now();
  try {
    await pool(Array.from({ length: spec.count }, (_, i) => i), spec.concurrency, async (i) => {
      const { docker, publishIp } = dockers[i % dockers.length]!;
      const t0 = performance.now();
      try {
        const container = await docker.createContainer({
          name: `${run}-${i}`,
          Image: spec.image,
          Cmd: spec.cmd,
          ExposedPorts: { '80/tcp': {} },
          HostConfig: {
            PortBindings: { '80/tcp': [{ HostIp: publishIp, HostPort: '' }] },
            Memory: spec.memoryMb * 2 ** 20,
            MemorySwap: spec.memoryMb * 2 ** 20,
            NanoCpus: Math.round(spec.cpus * 1e9),
            RestartPolicy: { Name: 'no' },
          },
        });
        made.push({ host: i % dockers.length, id: container.id });
        await container.start();
        samples.push(performance.now() - t0);
      } catch {
        failed += 1;
      }
    });
    const seconds = (performance.now() - start) / 1000;
    return { ok: samples.length, failed, seconds, perSecond: samples.length / seconds, p50Ms: percentile(samples, 50), p95Ms: percentile(samples, 95) };
  } finally {
    await pool(made, spec.concurrency, async ({ host, id }) => {
      await dockers[host]!.docker.getContainer(id).remove({ force: true, v: true }).catch(() => undefined);
    });
  }
}
