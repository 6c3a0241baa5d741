import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadApiConfig, loadHostWorkerConfig } from '../../core/config.js';
import { parseImageReference } from '../../core/image-ref.js';
import { containerPricePerPeriod } from '../../billing/prices.js';
import { AppError } from '../../core/errors.js';
import { resourcesFor } from '../../services/containers.js';
import { dockerLimits } from '../../activities/containers-docker.js';
import { createRegistryPolicy, isNonPublicAddress, registryHostname } from '../../services/registry-policy.js';

const MB = 1024 * 1024;
const minimal = { BERTH_DATABASE_URL: 'postgres://berth:pw@127.0.0.1:5432/berth', BERTH_INTERNAL_TOKEN: 'internal-token-0123456789' };

test('container price: base + per CPU + per GB of memory, the resource part rounded up once', () => {
  const prices = { base: 4, perCpu: 4, perGbMemory: 4 };
  assert.equal(containerPricePerPeriod({ cpuMillis: 1000, memoryMb: 512 }, prices), 10, 'the default container costs the old flat 10');
  assert.equal(containerPricePerPeriod({ cpuMillis: 2000, memoryMb: 2048 }, prices), 4 + 8 + 8);
  assert.equal(containerPricePerPeriod({ cpuMillis: 50, memoryMb: 16 }, prices), 4 + 1, '0.2 + 0.0625 rounds up to 1');
  assert.equal(containerPricePerPeriod({ cpuMillis: 1000, memoryMb: 1024 }, { base: 0, perCpu: 0, perGbMemory: 0 }), 0);
  assert.equal(containerPricePerPeriod({ cpuMillis: 250, memoryMb: 256 }, { base: 0, perCpu: 4, perGbMemory: 4 }), 2, '1 + 1, exact');
});

test('container limits: minimums and maximums hold, nothing can mean unlimited', () => {
  const config = loadApiConfig(minimal).containers;
  const refused = (input: Parameters<typeof resourcesFor>[1], pattern: RegExp) =>
    assert.throws(() => resourcesFor(config, input), (e: unknown) => e instanceof AppError && e.status === 400 && pattern.test(e.detail ?? ''));
  refused({ cpus: 0.0001 }, /cpus must be between 0.05 and 2/);
  refused({ cpus: 0.001 }, /cpus must be between/);
  refused({ cpus: 0.0004 }, /cpus must be between/); // would round to 0 millis
  refused({ cpus: 3 }, /cpus must be between/);
  refused({ cpus: 0.1234 }, /three decimals/);
  refused({ memoryMb: 8 }, /memoryMb must be between 16 and 2048/);
  refused({ memoryMb: 4096 }, /memoryMb must be between/);
  refused({ pidsLimit: 100_000 }, /pidsLimit must be at most 4096/);
  const defaults = resourcesFor(config, {});
  assert.deepEqual(defaults, { memoryMb: 512, cpuMillis: 1000, pidsLimit: 256, pricePerPeriod: 10 });
  assert.equal(resourcesFor(config, { cpus: 0.05, memoryMb: 16 }).cpuMillis, 50);
});

test('limit and price settings are parsed and checked', () => {
  const config = loadApiConfig({
    ...minimal,
    BERTH_MIN_CPUS: '0.25',
    BERTH_MIN_MEMORY_MB: '32',
    BERTH_PIDS_LIMIT: '100',
    BERTH_MAX_PIDS: '200',
    BERTH_PRICE_PER_CONTAINER_HOUR: '1',
    BERTH_PRICE_PER_CPU_HOUR: '2',
    BERTH_PRICE_PER_GB_HOUR: '3',
    BERTH_MAX_PULLS_PER_USER: '5',
  });
  assert.equal(config.containers.minCpuMillis, 250);
  assert.equal(config.containers.minMemoryMb, 32);
  assert.equal(config.containers.defaultPidsLimit, 100);
  assert.equal(config.containers.maxPidsLimit, 200);
  assert.deepEqual(config.containers.prices, { base: 1, perCpu: 2, perGbMemory: 3 });
  assert.equal(config.pulls.maxConcurrentPerUser, 5);
  assert.throws(() => loadApiConfig({ ...minimal, BERTH_MIN_CPUS: '0' }), /BERTH_MIN_CPUS: must be between 0.01/);
  assert.throws(() => loadApiConfig({ ...minimal, BERTH_MIN_CPUS: '0.0001' }), /BERTH_MIN_CPUS: must be a number with at most three decimals/);
  assert.throws(() => loadApiConfig({ ...minimal, BERTH_PIDS_LIMIT: '500', BERTH_MAX_PIDS: '200' }), /BERTH_PIDS_LIMIT/);
});

test('registry settings: Docker Hub and the registries with credentials by default; lists are checked', () => {
  const credentials = JSON.stringify({ 'reg.example:5000': { username: 'u', password: 'p' }, 'Admins.Example': { username: 'a', password: 'b', adminOnly: true } });
  const defaults = loadApiConfig({ ...minimal, BERTH_REGISTRY_CREDENTIALS: credentials }).registries;
  assert.deepEqual(defaults.allowed, ['docker.io', 'reg.example:5000', 'admins.example']);
  assert.deepEqual(defaults.internal, []);
  assert.deepEqual(defaults.adminOnly, ['admins.example']);
  const listed = loadApiConfig({ ...minimal, BERTH_ALLOWED_REGISTRIES: 'docker.io, ghcr.io', BERTH_INTERNAL_REGISTRIES: '127.0.0.1:5000' }).registries;
  assert.deepEqual(listed.allowed, ['docker.io', 'ghcr.io', '127.0.0.1:5000'], 'an internal registry is allowed too');
  assert.throws(() => loadApiConfig({ ...minimal, BERTH_ALLOWED_REGISTRIES: 'http://x' }), /BERTH_ALLOWED_REGISTRIES: "http:\/\/x" is not a registry host/);
  assert.throws(
    () => loadApiConfig({ ...minimal, BERTH_REGISTRY_CREDENTIALS: JSON.stringify({ r: { username: 'u', password: 'p', adminOnly: 'yes' } }) }),
    /adminOnly must be true or false/,
  );
  // The API needs no secrets: an entry with the flag alone will do.
  assert.deepEqual(loadApiConfig({ ...minimal, BERTH_REGISTRY_CREDENTIALS: '{"r.example:5000": {"adminOnly": true}}' }).registries.adminOnly, ['r.example:5000']);
  const host = loadHostWorkerConfig({ ...minimal, BERTH_HOST_ID: 'host-a', BERTH_MINIO_ACCESS_KEY: 'a', BERTH_MINIO_SECRET_KEY: 'b' });
  assert.equal(host.pullStallTimeoutMs, 20_000);
});

test('non-public addresses: loopback, link-local, private, CGNAT, multicast, IPv6 equivalents and mapped IPv4', () => {
  for (const address of ['127.0.0.1', '127.255.0.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:7f00:1', '::ffff:8.8.8.8']) {
    assert.ok(isNonPublicAddress(address), address);
  }
  for (const address of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '100.128.0.1', '2001:4860:4860::8888']) {
    assert.ok(!isNonPublicAddress(address), address);
  }
  assert.ok(isNonPublicAddress('not-an-address'));
  assert.equal(registryHostname('127.0.0.1:5000'), '127.0.0.1');
  assert.equal(registryHostname('[::1]:5000'), '::1');
  assert.equal(registryHostname('registry.example'), 'registry.example');
});

test('registry policy: not listed, loopback, link-local, private, or resolving to them is refused; internal and admin-only as configured', async () => {
  // A fake resolver: this is a unit test of the rule, not of DNS.
  const names: Record<string, string[]> = { 'rebind.example': ['93.184.216.34', '169.254.169.254'], 'public.example': ['93.184.216.34'] };
  const resolved: string[] = [];
  const policy = createRegistryPolicy(
    {
      allowed: ['docker.io', 'rebind.example', 'public.example', '127.0.0.1:9000', 'localhost:5000', '10.0.0.5:5000', '[::1]:5000', '127.0.0.1:5000', 'admins.example'],
      internal: ['127.0.0.1:5000'],
      adminOnly: ['admins.example'],
    },
    async (name) => {
      resolved.push(name);
      return names[name] ?? [];
    },
  );
  const user = { role: 'user' };
  const check = (reference: string, who = user) => policy.check(parseImageReference(reference), who);
  const refusedWith = async (reference: string, status: number, pattern: RegExp, who = user) =>
    assert.rejects(check(reference, who), (e: unknown) => e instanceof AppError && e.status === status && pattern.test(e.detail ?? ''), reference);

  await refusedWith('evil.example/x', 422, /Pulls from evil\.example are not allowed here/);
  await refusedWith('127.0.0.1:8080/api/x', 422, /not allowed/);
  await refusedWith('127.0.0.1:9000/minio/x', 422, /127\.0\.0\.1:9000 is a loopback, link-local or private address/);
  await refusedWith('localhost:5000/x', 422, /loopback/);
  await refusedWith('10.0.0.5:5000/x', 422, /private/);
  await refusedWith('[::1]:5000/x', 422, /loopback/);
  await refusedWith('rebind.example/x', 422, /rebind\.example resolves to a loopback, link-local or private address/);
  await refusedWith('admins.example/x', 403, /limited to admins/);
  await check('admins.example/x', { role: 'admin' });
  await check('127.0.0.1:5000/library/busybox:1.35'); // internal: the operator listed it
  await check('public.example/app:1');
  await check('busybox'); // docker.io; a name that does not resolve here is left to the pull
  assert.deepEqual(resolved.sort(), ['admins.example', 'docker.io', 'public.example', 'rebind.example'], 'IP literals are never resolved');
});

test('what Docker gets is never 0 (unlimited), even from a spec written before the floors', () => {
  assert.deepEqual(dockerLimits({ memoryMb: 0, cpuMillis: 0 }), { Memory: 6 * MB, MemorySwap: 6 * MB, NanoCpus: 10_000_000, PidsLimit: 256 });
  assert.deepEqual(dockerLimits({ memoryMb: 64, cpuMillis: 500, pidsLimit: 0 }), { Memory: 64 * MB, MemorySwap: 64 * MB, NanoCpus: 500_000_000, PidsLimit: 16 });
});
