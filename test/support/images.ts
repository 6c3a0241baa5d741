/**
 * Test images: unique references in the local registry, made from the seeded busybox; pulls
 * through the API.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import type { App } from '../../api/app.js';
import { bearer } from './app.js';
import { REGISTRY, dockerFor } from './stack.js';
import { sleep } from './wait.js';

async function drain(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) => {
      const failed = output?.find((m) => m.error);
      if (error || failed) reject(error ?? new Error(failed!.error));
      else resolve();
    }),
  );
}

/**
 * Pushes a new image: the seeded busybox plus a layer of `kb` random KiB, under a
 * unique name, so that no Docker host has it (nor its top layer) yet. Built on
 * host-a and removed from it again; returns the reference.
 */
export async function pushUniqueImage(prefix = 'test', kb = 256): Promise<string> {
  return pushImage(`${REGISTRY}/${prefix}/img-${randomUUID().slice(0, 8)}`, 'v1', kb);
}

/** Pushes `repo:tag`: the seeded busybox plus a layer of `kb` random KiB, built on host-a and removed from it again; returns the reference. */
export async function pushImage(repo: string, tag: string, kb: number): Promise<string> {
  const docker = dockerFor('host-a');
  const source = `${REGISTRY}/library/busybox:1.35`;
  await drain(docker, await docker.pull(source));
  const builder = await docker.createContainer({
    Image: source,
    Cmd: ['sh', '-c', `head -c ${kb * 1024} /dev/urandom > /blob`],
  });
  await builder.start();
  await builder.wait();
  await builder.commit({ repo, tag });
  await builder.remove();
  // Without a callback dockerode's push answers a promise of the stream (its types say otherwise).
  const pushed = await (docker.getImage(`${repo}:${tag}`).push({ authconfig: {} } as never) as unknown as Promise<NodeJS.ReadableStream>);
  await drain(docker, pushed);
  await docker.getImage(`${repo}:${tag}`).remove();
  return `${repo}:${tag}`;
}

/** The image as a daemon has it, or null. */
export async function inspectOn(hostId: string, reference: string) {
  try {
    return await dockerFor(hostId).getImage(reference).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return null;
    throw error;
  }
}

/**
 * POST /api/v1/images/pull with `body` ({ image, host, … }) as the user with `token`: waiting
 * for the pull's end (?wait=true) unless `wait` is false. Returns the response, whatever it is.
 */
export function pullRequest(app: App, token: string, body: Record<string, unknown>, wait = true) {
  return app.inject({ method: 'POST', url: `/api/v1/images/pull${wait ? '?wait=true' : ''}`, headers: bearer(token), payload: body });
}

/** Polls a pull's status (GET /api/v1/images/pulls/:pullId) every 250 ms until it is no longer running; returns it. */
export async function waitForPull(app: App, token: string, pullId: string, polls = 120) {
  for (let i = 0; i < polls; i++) {
    const res = await app.inject({ method: 'GET', url: `/api/v1/images/pulls/${pullId}`, headers: bearer(token) });
    assert.equal(res.statusCode, 200, res.body);
    if (res.json().state !== 'running') return res.json();
    await sleep(250);
  }
  throw new Error(`pull ${pullId} did not end`);
}
