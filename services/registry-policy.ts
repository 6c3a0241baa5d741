/**
 * Where users may pull from. An image reference names a registry the Docker daemon will
 * connect to, so an unchecked reference is a probe of the internal network (MinIO, the API,
 * Temporal, cloud metadata). A pull or DCU start is refused, before any workflow starts, when
 * its registry is not on the allow-list, or when its host is (or resolves to) a loopback,
 * link-local, private or otherwise non-public address, unless the operator listed that
 * registry as internal.
 */
import { BlockList, isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import type { RegistryPolicyConfig } from '../core/config.js';
import { AppError, forbidden } from '../core/errors.js';
import { registryHost, type ImageRef } from '../core/image-ref.js';

/** Addresses a registry of users' choosing may never be: nothing here is the public internet. */
const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local: cloud metadata lives here
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

const MAPPED = new BlockList();
MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/** True when the address is not a public unicast address. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return NON_PUBLIC.check(address, 'ipv4');
  if (family === 6) {
    // IPv4-mapped addresses (::ffff:a.b.c.d, however written) are refused whatever they map to:
    // no registry worth allowing is named that way. (They cannot be a rule of NON_PUBLIC:
    // BlockList matches every IPv4 address against a ::ffff:0:0/96 rule.)
    return MAPPED.check(address, 'ipv6') || NON_PUBLIC.check(address, 'ipv6');
  }
  return true; // not an address at all: never trust it
}

export const registryNotAllowed = (detail: string) => new AppError(422, 'registry-not-allowed', 'Registry Not Allowed', detail);

/** The host part of a registry domain: "127.0.0.1:5000" → "127.0.0.1", "[::1]:5000" → "::1". */
export function registryHostname(domain: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(domain);
  if (bracketed) return bracketed[1]!;
  return domain.replace(/:\d+$/, '');
}

export interface RegistryPolicy {
  /** Throws a 4xx AppError when the user may not pull this reference. */
  check(ref: ImageRef, user: { role: string }): Promise<void>;
}

export function createRegistryPolicy(
  config: RegistryPolicyConfig,
  resolve: (hostname: string) => Promise<string[]> = resolveAll,
): RegistryPolicy {
  const allowed = new Set(config.allowed);
  const internal = new Set(config.internal);
  const adminOnly = new Set(config.adminOnly);
  return {
    async check(ref, user) {
      const registry = registryHost(ref);
      if (!allowed.has(registry)) {
        throw registryNotAllowed(`Pulls from ${registry} are not allowed here; allowed registries: ${[...allowed].join(', ') || 'none'}.`);
      }
      if (adminOnly.has(registry) && user.role !== 'admin') throw forbidden(`Pulls from ${registry} are limited to admins.`);
      if (internal.has(registry)) return;
      const hostname = registryHostname(registry);
      if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
        throw registryNotAllowed(`${registry} is a loopback address.`);
      }
      const addresses = isIP(hostname) ? [hostname] : await resolve(hostname);
      const internalAddress = addresses.find(isNonPublicAddress);
      if (internalAddress) {
        throw registryNotAllowed(`${registry} ${internalAddress === hostname ? 'is' : 'resolves to'} a loopback, link-local or private address.`);
      }
    },
  };
}

/** Every address the name resolves to; none when it does not resolve (the pull then fails on its own). */
async function resolveAll(hostname: string): Promise<string[]> {
  try {
    const found = await Promise.race([
      lookup(hostname, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('lookup timed out')), 2000).unref()),
    ]);
    return found.map((a) => a.address);
  } catch {
    return [];
  }
}
