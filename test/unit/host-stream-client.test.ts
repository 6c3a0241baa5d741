/**
 * The API's client for host workers' endpoints (services/host-streams.ts) against a loopback
 * server of the test's own that closes a kept-alive connection as the next request arrives on it
 * (what a host worker's idle timeout does to a request sent at that moment).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createHostStreamClient } from '../../services/host-streams.js';

const OK = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok';

/** Answers the first request of each connection and drops the connection at its second, unanswered. */
async function closingServer(t: { after: (fn: () => unknown) => void }) {
  const stats = { connections: 0, answered: 0, dropped: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    stats.connections++;
    sockets.add(socket);
    let requests = 0;
    socket.on('data', (chunk) => {
      if (!chunk.toString('latin1').includes('\r\n\r\n')) return;
      requests++;
      if (requests === 1) {
        stats.answered++;
        socket.write(OK);
      } else {
        stats.dropped++;
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats };
}

const read = async (body: NodeJS.ReadableStream) => {
  let text = '';
  for await (const chunk of body) text += String(chunk);
  return text;
};

test('a GET on a kept-alive connection the host closed goes again once on a new connection', async (t) => {
  const { url, stats } = await closingServer(t);
  const client = createHostStreamClient({ token: 't', ca: null });
  t.after(() => client.close());

  const first = await client.get(url, '/streams');
  assert.deepEqual([first.status, await read(first.body)], [200, 'ok']);
  // The next GET goes out on the same kept-alive socket, which the server drops: retried on a new one.
  const second = await client.get(url, '/streams');
  assert.deepEqual([second.status, await read(second.body)], [200, 'ok']);
  assert.deepEqual(stats, { connections: 2, answered: 2, dropped: 1 });
});

test('a new connection reset before any answer is an error, not retried', async (t) => {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.on('data', () => socket.destroy());
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const client = createHostStreamClient({ token: 't', ca: null });
  t.after(() => client.close());
  await assert.rejects(client.get(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, '/streams'), {
    name: 'HostStreamError',
    reason: 'unreachable',
  });
  assert.equal(connections, 1);
});
