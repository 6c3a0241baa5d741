/**
 * One Docker stats stream per container whatever the number of viewers (issue 11, item 6).
 * This test counts, on the daemon side, the host worker's open
 * connections to its Docker socket (ss -xp): they are the whole host's, so it runs in the serial
 * pass's host-b lane (scripts/test.sh), after the kill tests and the network sweep: another
 * test's Docker call on host-b would change them. The
 * others count per container and run in the concurrent pass (test/integration/streams.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connectTemporal } from '../../../../core/temporal.js';
import { baseConfig, buildTestApp, createUser } from '../../../support/app.js';
import { dockerSocket, stackPid } from '../../../support/stack.js';
import { containerStreams, runStreaming, viewStats } from '../../../support/streams.js';
import { eventually } from '../../../support/wait.js';

const temporal = await connectTemporal(baseConfig.temporal);
test.after(() => temporal.connection.close());
const HOST = 'host-b';

/**
 * The host worker's open connections to its Docker daemon: its unix sockets whose peer is
 * one the daemon accepted on the host's docker.sock.
 */
async function daemonConnections(): Promise<Set<string>> {
  const pid = await stackPid(`worker-${HOST}`);
  const pids = new Set([pid]);
  // The pid file may name a wrapper: count its descendants too.
  for (let grew = true; grew; ) {
    grew = false;
    const { stdout } = await promisify(execFile)('ps', ['-e', '-o', 'pid=,ppid=']);
    for (const line of stdout.trim().split('\n')) {
      const [child, parent] = line.trim().split(/\s+/).map(Number) as [number, number];
      if (pids.has(parent) && !pids.has(child)) {
        pids.add(child);
        grew = true;
      }
    }
  }
  const { stdout } = await promisify(execFile)('ss', ['-xpn'], { maxBuffer: 64 * 1024 * 1024 });
  const rows = stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/));
  const socketPath = dockerSocket(HOST);
  // u_str ESTAB 0 0 <local path|*> <inode> <peer|*> <peer inode> users:((...))
  const daemonSide = new Set(rows.filter((r) => r[4] === socketPath).map((r) => r[5]));
  const ours = (r: string[]) => [...r.slice(8).join(' ').matchAll(/pid=(\d+)/g)].some((m) => pids.has(Number(m[1])));
  return new Set(rows.filter((r) => daemonSide.has(r[7]) && ours(r)).map((r) => r[5]!));
}

const minus = <T>(a: Set<T>, b: Set<T>) => new Set([...a].filter((x) => !b.has(x)));

test('stats: 20 viewers of one container share one Docker stats stream, closed when the last leaves', async (t) => {
  const app = await buildTestApp(t, { streams: { maxPerUser: 20, idleTimeoutMs: 60_000 } });
  const user = await createUser(app, { balance: 10_000 });
  const connectionsAtStart = await daemonConnections();
  const id = await runStreaming(t, temporal, app, user, HOST);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });

  const before = await containerStreams(HOST, id);
  // The keep-alive connections of the activities that ran the container go idle and close (an
  // idle socket of Node's agent closes after 5 s): wait until every connection the host worker
  // opened to its daemon since the test began has closed.
  await eventually('the host worker’s connections to its daemon opened by this test’s activities to close', async () =>
    minus(await daemonConnections(), connectionsAtStart).size === 0, 30);
  const connectionsBefore = await daemonConnections();
  const viewers = Array.from({ length: 20 }, () => viewStats(address, user, id));
  const firsts = await Promise.all(viewers.map((v) => v.first));
  for (const sample of firsts) assert.equal(typeof sample.memoryUsage, 'number', JSON.stringify(sample));
  await Promise.all(viewers.map((v) => eventually('a second sample for every viewer', async () => v.samples.length >= 2, 15)));

  const during = await containerStreams(HOST, id);
  assert.equal(during.stats - before.stats, 1, 'one Docker stats stream for 20 viewers');
  assert.equal(during.viewers.stats - before.viewers.stats, 20, '20 viewers reading it');
  const connectionsDuring = await daemonConnections();

  // All but one leave: the shared stream stays for the last.
  for (const v of viewers.slice(1)) v.ws.close();
  await eventually('19 viewers gone', async () => (await containerStreams(HOST, id)).viewers.stats === before.viewers.stats + 1, 10);
  const samplesBefore = viewers[0]!.samples.length;
  await eventually('samples still flowing to the last viewer', async () => viewers[0]!.samples.length > samplesBefore + 1, 10);
  assert.equal((await containerStreams(HOST, id)).stats, before.stats + 1);

  viewers[0]!.ws.close();
  await eventually('the Docker stats stream closed with its last viewer', async () => {
    const now = await containerStreams(HOST, id);
    return now.stats === before.stats && now.viewers.stats === before.viewers.stats;
  }, 10);
  // Daemon side: the host worker's connections to its docker.sock are its event stream, idle
  // keep-alive connections, those of activities running meanwhile (other tests), and the stats
  // streams. Those of the stats streams were open with the viewers and closed when they left
  // (one may have been an idle keep-alive connection before).
  const connectionsAfter = await daemonConnections();
  const statsConnections = minus(connectionsDuring, connectionsAfter);
  t.diagnostic(
    `host worker connections to the daemon: ${connectionsBefore.size} before, ${connectionsDuring.size} with 20 stats ` +
      `viewers of one container, ${connectionsAfter.size} after they left; closed when they left: ${statsConnections.size}`,
  );
  assert.ok(statsConnections.size >= 1 && statsConnections.size <= 2, `${statsConnections.size} daemon connections for 20 viewers`);
});
