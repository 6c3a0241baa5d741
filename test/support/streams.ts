/**
 * Log follows and stats sockets as a client opens them, and the Docker streams a host worker
 * holds for one container (its GET /streams?container=<id>): counted per container, so tests
 * that count them run beside each other.
 */
import assert from 'node:assert/strict';
import { eq } from 'drizzle-orm';
import WebSocket from 'ws';
import type { Client } from '@temporalio/client';
import { hosts } from '../../db/schema.js';
import { createHostStreamClient } from '../../services/host-streams.js';
import type { App } from '../../api/app.js';
import { baseConfig, bearer, testDb, type TestUser } from './app.js';
import { pullHttpd } from './containers.js';

export type StreamCounts = { logs: number; stats: number; viewers: { logs: number; stats: number } };

/** The API's client for host workers' endpoints (over TLS where they serve it), for the counts. */
let client: ReturnType<typeof createHostStreamClient> | undefined;

/** The Docker streams `hostId`'s worker holds open for container `id`, and the viewers behind them. */
export async function containerStreams(hostId: string, id: string): Promise<StreamCounts> {
  const [host] = await testDb().db.select().from(hosts).where(eq(hosts.id, hostId));
  if (!client) {
    const made = createHostStreamClient({ token: baseConfig.internalToken, ca: baseConfig.streamsCa });
    process.once('beforeExit', () => made.close());
    client = made;
  }
  const res = await client.get(host!.streamUrl!, `/streams?container=${id}`);
  const chunks: Buffer[] = [];
  for await (const chunk of res.body as AsyncIterable<Buffer>) chunks.push(chunk);
  assert.equal(res.status, 200);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as StreamCounts;
}

/** Writes a line every half second and leaves on SIGTERM. */
export const TICKING = ['sh', '-c', 'trap "exit 0" TERM; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.5; done'];

/** A running httpd container of the user's on `host` (removed after the test); `cmd` overrides its command. */
export async function runStreaming(t: { after: (fn: () => unknown) => void }, temporal: Client, app: App, user: TestUser, host: string, cmd?: string[]) {
  const image = await pullHttpd(app, user, host);
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/containers?wait=true',
    headers: bearer(user.token),
    payload: { imageId: image.id, memoryMb: 64, ...(cmd ? { cmd } : {}) },
  });
  assert.equal(res.statusCode, 201, res.body);
  const { id } = res.json<{ id: string }>();
  t.after(() => temporal.workflow.getHandle(`container-${id}`).executeUpdate('remove').catch(() => undefined));
  return id;
}

export interface StatsViewer {
  ws: WebSocket;
  samples: Array<Record<string, unknown>>;
  /** Resolves with the first message. */
  first: Promise<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
}

/** A stats socket on container `id`, through the API listening at `address`. */
export function viewStats(address: string, user: TestUser, id: string): StatsViewer {
  const ws = new WebSocket(`${address.replace('http', 'ws')}/api/v1/containers/${id}/stats`, { headers: bearer(user.token) });
  const samples: Array<Record<string, unknown>> = [];
  const first = new Promise<Record<string, unknown>>((resolve, reject) => {
    ws.on('message', (data) => {
      samples.push(JSON.parse((data as Buffer).toString()));
      resolve(samples[0]!);
    });
    ws.on('error', reject);
  });
  first.catch(() => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  return { ws, samples, first, closed };
}

/** A followed log, open once its first line arrived. */
export async function follow(address: string, user: TestUser, id: string) {
  const abort = new AbortController();
  const res = await fetch(`${address}/api/v1/containers/${id}/logs?follow=true&tail=0`, { headers: bearer(user.token), signal: abort.signal });
  if (res.status !== 200) return { res, abort, close: () => abort.abort() };
  const reader = res.body!.getReader();
  await reader.read();
  return { res, abort, close: () => abort.abort() };
}
