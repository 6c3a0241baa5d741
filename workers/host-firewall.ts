/**
 * The host's firewall for containers on users' networks (bridges `bth*`, see
 * core/network-names.ts), installed by the host worker at start:
 *
 * - FORWARD, through Docker's DOCKER-USER chain (where Docker expects operators' rules and
 *   never flushes them): chain BERTH-ISOLATION lets through replies, traffic within one
 *   user's network and the allowed CIDRs, then drops what a user network sends to another
 *   user's network, to the machine's other bridges, and to loopback, link-local, private
 *   and shared (CGNAT) addresses. What is left, public addresses, goes on to Docker's rules.
 * - INPUT: chain BERTH-INPUT drops new connections from users' networks to the machine itself
 *   (the bridge's gateway address reaches every service listening on the host), replies and
 *   the allowed CIDRs aside.
 *
 * Both chains are replaced atomically (iptables-restore --noflush flushes and refills only
 * them), so a restart, or the two host workers of one machine, install the same rules again
 * without a gap or a duplicate. The jumps into them are checked and inserted under a lock of
 * the machine (flock on LOCK_FILE): two workers starting at once would otherwise both insert
 * a jump, then both delete the duplicate, leaving none.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { USER_BRIDGE_PREFIX } from '../core/network-names.js';

const run = promisify(execFile);

export const FORWARD_CHAIN = 'BERTH-ISOLATION';
/** Held while the rules are installed: one installer of the machine at a time. */
export const LOCK_FILE = '/run/berth-firewall.lock';
export const INPUT_CHAIN = 'BERTH-INPUT';
const USER_BRIDGES = `${USER_BRIDGE_PREFIX}+`;

/** Never reachable from a user's network unless allowed by CIDR. */
export const BLOCKED_DESTINATIONS = [
  '127.0.0.0/8', // loopback (routed to the host when route_localnet is on)
  '169.254.0.0/16', // link-local: cloud metadata services
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10', // shared address space (carrier-grade NAT, some clouds' internal services)
] as const;

export interface FirewallPlan {
  /** CIDRs let through before any drop (BERTH_EGRESS_ALLOW_CIDRS). */
  allowCidrs: readonly string[];
  /** The machine's bridges that are not users' networks (Docker's default bridges, other networks). */
  otherBridges: readonly string[];
  /**
   * The machine's DNS resolvers (IPv4, not loopback). Docker's embedded DNS forwards a
   * container's queries to them from inside the container, so port 53 there stays open
   * even when they have private addresses (a cloud's resolver usually has one).
   */
  nameservers: readonly string[];
}

/** The iptables-restore input (for --noflush) that defines both chains. */
export function firewallRestoreInput(plan: FirewallPlan): string {
  const fwd = (rule: string) => `-A ${FORWARD_CHAIN} ${rule}`;
  const inp = (rule: string) => `-A ${INPUT_CHAIN} ${rule}`;
  const lines = [
    '*filter',
    `:${FORWARD_CHAIN} - [0:0]`,
    `:${INPUT_CHAIN} - [0:0]`,
    // Replies: a published port answers whoever connected to it.
    fwd('-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN'),
    // Within one bridge, a user's own containers reach each other (br_netfilter shows this traffic to FORWARD).
    fwd(`-i ${USER_BRIDGES} -m physdev --physdev-is-bridged -j RETURN`),
    // Another container's published port, reached through a host address: what anyone outside may do.
    fwd(`-i ${USER_BRIDGES} -o ${USER_BRIDGES} -m conntrack --ctstate DNAT -j RETURN`),
    ...plan.allowCidrs.map((cidr) => fwd(`-i ${USER_BRIDGES} -d ${cidr} -j RETURN`)),
    ...plan.nameservers.flatMap((ip) => ['udp', 'tcp'].map((proto) => fwd(`-i ${USER_BRIDGES} -d ${ip}/32 -p ${proto} --dport 53 -j RETURN`))),
    // Another user's network, on this daemon or on another one of this machine.
    fwd(`-i ${USER_BRIDGES} -o ${USER_BRIDGES} -j DROP`),
    ...plan.otherBridges.map((bridge) => fwd(`-i ${USER_BRIDGES} -o ${bridge} -j DROP`)),
    ...BLOCKED_DESTINATIONS.map((cidr) => fwd(`-i ${USER_BRIDGES} -d ${cidr} -j DROP`)),
    // Into a user's network from anywhere else (a container on another bridge, one made before
    // users' networks): only to a published port.
    fwd(`! -i ${USER_BRIDGES} -o ${USER_BRIDGES} -m conntrack ! --ctstate DNAT -j DROP`),
    inp('-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN'),
    ...plan.allowCidrs.map((cidr) => inp(`-d ${cidr} -j RETURN`)),
    // A resolver on one of the machine's own addresses: Docker's embedded DNS forwards to it.
    ...plan.nameservers.flatMap((ip) => ['udp', 'tcp'].map((proto) => inp(`-d ${ip}/32 -p ${proto} --dport 53 -j RETURN`))),
    inp('-j DROP'),
    'COMMIT',
    '',
  ];
  return lines.join('\n');
}

/** The jumps into Berth's chains, as iptables arguments after -C/-I (chain first). */
export const JUMPS = [
  ['DOCKER-USER', '-j', FORWARD_CHAIN],
  ['INPUT', '-i', USER_BRIDGES, '-j', INPUT_CHAIN],
] as const;

/** The machine's Linux bridges, users' networks excepted. */
export async function otherBridges(): Promise<string[]> {
  const names = await readdir('/sys/class/net');
  const bridges: string[] = [];
  for (const name of names) {
    if (name.startsWith(USER_BRIDGE_PREFIX)) continue;
    const isBridge = await stat(`/sys/class/net/${name}/bridge`).then(() => true, () => false);
    if (isBridge) bridges.push(name);
  }
  return bridges.sort();
}

/**
 * The IPv4 resolvers Docker forwards containers' queries to: those /etc/resolv.conf names,
 * loopback ones aside (Docker does not forward to those); when it names only loopback
 * (systemd-resolved's stub, 127.0.0.53), the upstream servers systemd-resolved lists, which
 * is where Docker looks too.
 */
export async function hostNameservers(paths = ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf']): Promise<string[]> {
  for (const path of paths) {
    const text = await readFile(path, 'utf8').catch(() => '');
    const found = [...text.matchAll(/^\s*nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/gm)]
      .map((m) => m[1]!)
      .filter((ip) => !ip.startsWith('127.'));
    if (found.length > 0) return found;
  }
  return [];
}

async function iptables(...args: string[]) {
  return run('iptables', ['-w', '10', ...args]);
}

/**
 * Runs `fn` holding the machine's firewall lock. `flock` holds it for as long as its stdin is
 * open, so the lock goes when this process does, however it ends.
 */
export async function withFirewallLock<T>(fn: () => Promise<T>, lockFile = LOCK_FILE): Promise<T> {
  const holder = spawn('flock', ['-w', '60', lockFile, '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] });
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout.once('data', () => resolve());
      holder.once('error', reject);
      holder.once('exit', (code) => reject(new Error(`could not take the firewall lock ${lockFile} (flock exited ${code})`)));
    });
    return await fn();
  } finally {
    holder.stdin.end();
  }
}

/**
 * Installs (or reinstalls) the rules, under the machine's firewall lock. Idempotent: the
 * chains are replaced whole, and a jump is inserted only when `iptables -C` does not find it
 * (a duplicate, which an installer without the lock could have added, is deleted).
 */
export async function installFirewall(plan: FirewallPlan, logger: Logger): Promise<void> {
  await withFirewallLock(async () => {
    const restore = run('iptables-restore', ['-w', '10', '--noflush']);
    restore.child.stdin!.end(firewallRestoreInput(plan));
    await restore;
    for (const [chain, ...rule] of JUMPS) {
      const present = await iptables('-C', chain, ...rule).then(() => true, () => false);
      // First in the chain: Docker appends its RETURN to DOCKER-USER, and INPUT may end in ACCEPTs.
      if (!present) await iptables('-I', chain, '1', ...rule);
      const { stdout } = await iptables('-S', chain);
      const wanted = `-A ${chain} ${rule.join(' ')}`;
      const copies = stdout.split('\n').filter((line) => line.trim() === wanted).length;
      for (let extra = copies; extra > 1; extra--) await iptables('-D', chain, ...rule);
    }
  });
  logger.info({ forward: FORWARD_CHAIN, input: INPUT_CHAIN, allowCidrs: plan.allowCidrs, otherBridges: plan.otherBridges }, 'egress firewall installed');
}
