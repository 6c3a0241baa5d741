/**
 * The console in a real Chromium (issue 16, item 6), one user's way through it on the stack: a
 * pull whose progress shows, httpd run from its image's row and its address answering, stopped
 * and started, its logs followed, its live stats moving, packaged by DCU and the archive
 * downloaded, the charges in the ledger; then a second user who sees none of it. Each test signs
 * in in a browser context of its own; what one test made, the next ones use (a file's tests run
 * in order). Everything runs on host-a (scripts/test.sh runs these files after the host-a lane).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import type { Page, WebSocket as PageSocket } from 'playwright-core';
import { HTTPD, BUSYBOX } from '../support/containers.js';
import { pushImage } from '../support/images.js';
import { REGISTRY, dockerFor } from '../support/stack.js';
import { sha256 } from '../support/dcu.js';
import { eventually, sleep } from '../support/wait.js';
import { CONSOLE, api, apiOk, control, createUser, formWith, go, money, rowWith, signedIn, startBrowser, views, type ConsoleUser } from './support.js';

const HOST = 'host-a';
const browser = await startBrowser();
const alice = await createUser({ balance: 50_000, prefix: 'alice' });
// The Images page offers a user the hosts their images are on: busybox on host-a makes it hers.
await apiOk(alice.token, 'POST', '/api/v1/images/pull?wait=true', { image: BUSYBOX, host: HOST }, 201);

interface ImageView {
  id: string;
  reference: string;
  repository: string;
  charged: number;
  sizeBytes: number;
}
interface ContainerView {
  id: string;
  name: string;
  state: string;
  hostIp: string;
  hostPort: number;
}

const imagesOf = async (user: ConsoleUser) => (await apiOk<{ items: ImageView[] }>(user.token, 'GET', '/api/v1/images?pageSize=100')).items;
const containerNamed = async (user: ConsoleUser, name: string) =>
  (await apiOk<{ items: ContainerView[] }>(user.token, 'GET', '/api/v1/containers?pageSize=100')).items.find((c) => c.name === name);

/** What the tests made, for the ones after them. */
const made: { image?: ImageView; container?: ContainerView & { address: string } } = {};
const theContainer = () => made.container ?? assert.fail('no container: the test that runs it failed');

/** The select "Host" (a label around a select names it with the selected option too: "Host Any host"). */
const hostSelect = (page: Page) => page.getByRole('combobox', { name: /^Host\b/ });

/** Fills the Images page's pull form (image, host-a) and presses Pull. */
async function pullFromImagesPage(page: Page, reference: string) {
  await go(page, 'Images', '/images');
  await page.getByLabel('Image', { exact: true }).fill(reference);
  await hostSelect(page).selectOption(HOST);
  await page.getByRole('button', { name: 'Pull', exact: true }).click();
}

/**
 * A 128 MiB image, whose pull from the stack's registry lasts a second or two: long enough for
 * its progress to show. Pushed into the registry once (an image of its own per run would add
 * 128 MiB to the registry every time) and removed from host-a before each run, so that the pull
 * downloads it again.
 */
async function progressImage(): Promise<string> {
  const [repo, tag] = [`${REGISTRY}/browser/progress`, '128m'];
  const manifest = await fetch(`http://${REGISTRY}/v2/browser/progress/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  if (manifest.status === 404) await pushImage(repo, tag, 128 * 1024);
  else assert.equal(manifest.status, 200, 'the registry answers');
  try {
    await dockerFor(HOST).getImage(`${repo}:${tag}`).remove({ force: true });
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
  return `${repo}:${tag}`;
}

test('Images: a pull shows its progress, then the image is in the table with its size and its charge', { timeout: 240_000 }, async (t) => {
  const reference = await progressImage();
  const session = await signedIn(t, browser, alice);
  const { page } = session;
  await pullFromImagesPage(page, reference);

  const image = await eventually('the pulled image in the API', async () => (await imagesOf(alice)).find((i) => i.reference === reference), 180);
  made.image = image;
  // The table's row, once it shows what the pull charged.
  const row = rowWith(page, 'browser/progress').filter({ hasText: 'Private' }).filter({ hasText: money(image.charged) });
  await row.waitFor({ timeout: 30_000 });
  assert.match(await row.innerText(), /\d+(\.\d+)?\s*(B|kB|KB|KiB|MB|MiB|GB|GiB)\b/, 'the row shows the size with its unit');

  const seen = await session.seen();
  assert.ok(seen.roles.includes('progressbar'), `a progress bar showed while pulling (roles seen: ${seen.roles.join(', ')})`);
  // From the stack's registry the pull's progress stays at 0 % until it completes (a second or so): the bar is
  // asked to show a value, not to move.
  assert.ok(seen.progress.length > 0 && seen.progress.every((value) => value >= 0 && value <= 100), `the bar shows its value (values: ${seen.progress.slice(0, 20).join(', ')})`);
  await views(page, 'images');
});

test('Containers: httpd run from its image row; its address (the link in the table) answers', { timeout: 240_000 }, async (t) => {
  const { page } = await signedIn(t, browser, alice);
  await pullFromImagesPage(page, HTTPD);
  // Hers: the page lists the public images of others too.
  const httpdRow = rowWith(page, 'library/httpd').filter({ hasText: 'Private' });
  await control(httpdRow, 'Run').waitFor({ timeout: 120_000 });
  await control(httpdRow, 'Run').click();

  const name = `web-${randomUUID().slice(0, 8)}`;
  const form = formWith(page, 'Container port');
  await form.getByLabel('Container port', { exact: true }).fill('80');
  await form.getByLabel('Memory (MB)', { exact: true }).fill('64');
  await form.getByLabel('Name', { exact: true }).fill(name);
  await form.getByRole('button', { name: 'Run', exact: true }).click();

  const container = await eventually('the container running, in the API', async () => {
    const c = await containerNamed(alice, name);
    return c?.state === 'running' && c;
  }, 120);
  await go(page, 'Containers', '/containers');
  const row = rowWith(page, name);
  await row.filter({ hasText: /running/i }).waitFor({ timeout: 30_000 });
  const link = row.locator(`a[href*="${container.hostIp}:${container.hostPort}"]`);
  const address = await link.getAttribute('href');
  assert.ok(address && address.startsWith(`http://${container.hostIp}:${container.hostPort}`), `the address link: ${address}`);
  made.container = { ...container, address };

  const res = await fetch(address);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /Berth httpd/);
  await views(page, 'containers');
});

test('Containers: Stop, then Start, from the table; the state follows and the address answers again', { timeout: 180_000 }, async (t) => {
  const container = theContainer();
  const { page } = await signedIn(t, browser, alice);
  await go(page, 'Containers', '/containers');
  const row = rowWith(page, container.name);
  await row.filter({ hasText: /running/i }).waitFor();

  await control(row, 'Stop').click();
  await row.filter({ hasText: /stopped/i }).waitFor({ timeout: 60_000 });
  assert.equal((await containerNamed(alice, container.name))?.state, 'stopped');
  await assert.rejects(fetch(container.address), 'a stopped container does not answer');

  await control(row, 'Start').click();
  await row.filter({ hasText: /running/i }).waitFor({ timeout: 60_000 });
  assert.equal((await containerNamed(alice, container.name))?.state, 'running');
  const res = await eventually('the address answering again', async () => {
    try {
      return await fetch(container.address);
    } catch {
      return undefined;
    }
  });
  assert.equal(res.status, 200);
});

/** How many times `text` is on the page. */
const occurrences = async (page: Page, text: string) => (await page.locator('body').innerText()).split(text).length - 1;

test('Container page: its logs; with Follow on, new lines appear without a reload; the logs download', { timeout: 120_000 }, async (t) => {
  const container = theContainer();
  const { page } = await signedIn(t, browser, alice);
  await page.goto(`${CONSOLE}/containers/${container.id}`);
  // httpd -v logs one line per request: the earlier tests' requests are there.
  await page.getByText(/response:200/).first().waitFor();

  await page.getByRole('switch', { name: 'Follow', exact: true }).or(page.getByRole('checkbox', { name: 'Follow', exact: true })).check();
  const before = await occurrences(page, 'response:404');
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${container.address}/missing-${randomUUID()}`)).status, 404);
  await eventually('three new log lines on the page', async () => (await occurrences(page, 'response:404')) >= before + 3, 20);

  const [download] = await Promise.all([page.waitForEvent('download'), control(page, 'Download').click()]);
  const logs = await readFile((await download.path()), 'utf8');
  assert.match(logs, /response:404/, 'the downloaded logs hold the new lines');
});

/**
 * What the live stats show: the numbers of their section (the region named like "Live stats",
 * else the page: CPU % and memory), and the largest chart on the page as an image.
 */
async function statsNow(page: Page) {
  const region = page.getByRole('region', { name: /stats/i });
  const scope = (await region.count()) === 1 ? region : page.locator('body');
  const numbers = ((await scope.innerText()).match(/\d+(\.\d+)?/g) ?? []).join(' ');
  const index = await page.evaluate(() => {
    const graphics = [...document.querySelectorAll('canvas, svg')];
    const areas = graphics.map((g) => {
      const box = g.getBoundingClientRect();
      return box.width >= 150 && box.height >= 60 ? box.width * box.height : 0;
    });
    const largest = Math.max(...areas, 0);
    return largest > 0 ? areas.indexOf(largest) : -1;
  });
  if (index < 0) return undefined;
  const chart = await page.locator('canvas, svg').nth(index).screenshot();
  return { numbers, chart };
}

test('Container page: live stats, CPU % and memory, move within a few seconds; the stats socket closes when the page is left', { timeout: 120_000 }, async (t) => {
  const container = theContainer();
  const { page } = await signedIn(t, browser, alice);
  const sockets: PageSocket[] = [];
  page.on('websocket', (socket) => sockets.push(socket));
  await page.goto(`${CONSOLE}/containers/${container.id}`);
  await page.getByText('CPU %', { exact: true }).first().waitFor();
  const stats = sockets.find((s) => s.url().includes(`/api/v1/containers/${container.id}/stats`));
  assert.ok(stats, `a stats WebSocket is open (sockets: ${sockets.map((s) => s.url()).join(', ')})`);
  assert.ok(!new URL(stats.url()).search.includes('ticket'), 'the console authenticates the socket by its cookie, not by a ticket in the URL');

  // Keep httpd busy meanwhile, so that its CPU use moves too.
  let loading = true;
  const load = (async () => {
    while (loading) {
      await fetch(container.address).then((r) => r.arrayBuffer()).catch(() => undefined);
      await sleep(5);
    }
  })();
  try {
    const first = await eventually('the chart (a canvas or an svg of at least 150×60)', () => statsNow(page), 10);
    await eventually('the stats numbers or the chart changing', async () => {
      const now = await statsNow(page);
      return now && (now.numbers !== first.numbers || !now.chart.equals(first.chart));
    }, 8);
  } finally {
    loading = false;
    await load;
  }

  await views(page, 'container');

  await go(page, 'Containers', '/containers');
  await eventually('the stats socket closed once the page is left', async () => stats.isClosed(), 5);
});

test('DCU: a task started from the page runs to completion; Download gives the gzip archive the API recorded', { timeout: 300_000 }, async (t) => {
  const { page } = await signedIn(t, browser, alice);
  await go(page, 'DCU', '/dcu');
  await page.getByLabel('Image', { exact: true }).fill(HTTPD);
  // The DCU API takes a host; when the page offers the choice, the task goes to host-a like the rest of this file.
  const host = hostSelect(page);
  if ((await host.count()) > 0) await host.selectOption(HOST);
  await page.getByRole('button', { name: 'Start', exact: true }).click();

  const row = rowWith(page, 'library/httpd');
  const download = control(row, 'Download');
  await download.first().waitFor({ timeout: 240_000 });
  const { data } = await apiOk<{ data: { items: Array<{ task_id: string; state: string; sha256: string | null; docker_image_name: string }> } }>(
    alice.token,
    'GET',
    '/api/dcu/query?page_size=100',
  );
  const task = data.items.find((item) => item.state === 'completed');
  assert.ok(task?.sha256, `the completed task in the API: ${JSON.stringify(data.items)}`);
  await views(page, 'dcu');

  const [file] = await Promise.all([page.waitForEvent('download'), download.first().click()]);
  const bytes = await readFile((await file.path()));
  assert.deepEqual([...bytes.subarray(0, 2)], [0x1f, 0x8b], 'the download is a gzip');
  assert.equal(sha256(bytes), task.sha256, 'the bytes are the archive the task stored');
  assert.equal(gunzipSync(bytes).subarray(257, 262).toString(), 'ustar', 'inside is a tar (docker save)');
});

test('Ledger: the entries with their amounts and the balance after each', { timeout: 60_000 }, async (t) => {
  const { items } = await apiOk<{ items: Array<{ amount: number; balanceAfter: number; kind: string }> }>(alice.token, 'GET', '/api/v1/users/me/ledger');
  assert.ok(items.length >= 3, 'the starting credit and the charges are entries');
  const { page } = await signedIn(t, browser, alice);
  await go(page, 'Ledger', '/ledger');
  for (const entry of items.slice(0, 3)) {
    await page.getByRole('row').filter({ hasText: money(Math.abs(entry.amount)) }).filter({ hasText: money(entry.balanceAfter) }).first().waitFor();
  }
  await views(page, 'ledger');
});

test('A second user sees none of the first one’s images, containers, tasks or entries, even at their addresses', { timeout: 180_000 }, async (t) => {
  const container = theContainer();
  const bob = await createUser({ balance: 10_000, prefix: 'bob' });
  // Bob has things of his own: the pages have loaded when his are on them.
  const { id: imageId } = await apiOk<{ id: string }>(bob.token, 'POST', '/api/v1/images/pull?wait=true', { image: BUSYBOX, host: HOST }, 201);
  const bobsContainer = `bob-${randomUUID().slice(0, 8)}`;
  await apiOk(bob.token, 'POST', '/api/v1/containers?wait=true', { imageId, name: bobsContainer, containerPort: 8080, memoryMb: 16, cmd: ['sleep', '3600'] }, 201);

  const session = await signedIn(t, browser, bob);
  const { page } = session;
  const body = () => page.locator('body').innerText();
  const alicesImage = made.image?.repository ?? assert.fail('no image: the pull test failed');

  const { balance } = await apiOk<{ balance: number }>(bob.token, 'GET', '/api/v1/users/me');
  await page.getByText(money(balance)).first().waitFor();
  await page.getByText(bobsContainer).first().waitFor();
  assert.ok(!(await body()).includes(container.name), 'the dashboard shows none of hers');

  await go(page, 'Images', '/images');
  await rowWith(page, 'busybox').first().waitFor();
  // (Others' public images are listed: hers are private.)
  assert.ok(!(await body()).includes(alicesImage), 'the images page shows none of hers');

  await go(page, 'Containers', '/containers');
  await rowWith(page, bobsContainer).waitFor();
  assert.ok(!(await body()).includes(container.name), 'the containers page shows none of hers');

  const dcuList = page.waitForResponse((r) => r.url().startsWith(`${CONSOLE}/api/dcu/query`) && r.ok());
  await go(page, 'DCU', '/dcu');
  await dcuList;
  await sleep(500);
  assert.ok(!(await body()).includes('httpd'), 'the DCU page shows none of her tasks');

  const ledger = page.waitForResponse((r) => r.url().startsWith(`${CONSOLE}/api/v1/users/me/ledger`) && r.ok());
  await go(page, 'Ledger', '/ledger');
  await ledger;
  await page.getByRole('row').filter({ hasText: money(10_000) }).first().waitFor();
  assert.ok(!(await body()).includes(alice.username), 'the ledger shows none of hers');

  // Her container's own page: the API refuses it to him, and the page shows nothing of it.
  const refused = new RegExp(`^/api/v1/containers/${container.id}(/|\\?|$)`);
  session.allow(404, refused);
  await page.goto(`${CONSOLE}/containers/${container.id}`);
  await eventually('the API refusing her container to him', async () => session.allowed.some((a) => a.status === 404 && refused.test(a.path)), 10);
  await sleep(500);
  assert.ok(!(await body()).includes(container.name), 'her container page shows nothing of hers');
  assert.equal((await api(bob.token, 'GET', `/api/v1/containers/${container.id}`)).status, 404);
});
