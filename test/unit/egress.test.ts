import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadHostWorkerConfig } from '../../core/config.js';
import { publicDockerMessage } from '../../activities/docker-errors.js';
import { userBridgeName } from '../../activities/networks.js';
import { FORWARD_CHAIN, firewallRestoreInput, hostNameservers } from '../../workers/host-firewall.js';

const hostEnv = {
  BERTH_DATABASE_URL: 'postgres://berth:pw@127.0.0.1:5432/berth',
  BERTH_INTERNAL_TOKEN: 'internal-token-0123456789',
  BERTH_HOST_ID: 'host-a',
  BERTH_MINIO_ACCESS_KEY: 'k',
  BERTH_MINIO_SECRET_KEY: 's',
};

test('BERTH_EGRESS_ALLOW_CIDRS: IPv4 CIDRs, comma-separated; anything else names the variable', () => {
  assert.deepEqual(loadHostWorkerConfig(hostEnv).egress, { firewall: 'iptables', allowCidrs: [] });
  const config = loadHostWorkerConfig({ ...hostEnv, BERTH_EGRESS_ALLOW_CIDRS: '10.1.2.0/24, 192.168.0.10/32', BERTH_EGRESS_FIREWALL: 'off' });
  assert.deepEqual(config.egress, { firewall: 'off', allowCidrs: ['10.1.2.0/24', '192.168.0.10/32'] });
  for (const bad of ['10.1.2.0', '10.1.2.0/33', '256.1.1.1/8', 'example.com/24', '10.1.2.0/24;x']) {
    assert.throws(() => loadHostWorkerConfig({ ...hostEnv, BERTH_EGRESS_ALLOW_CIDRS: bad }), (error: unknown) =>
      error instanceof ConfigError && error.variable === 'BERTH_EGRESS_ALLOW_CIDRS', bad);
  }
  assert.throws(() => loadHostWorkerConfig({ ...hostEnv, BERTH_EGRESS_FIREWALL: 'nft' }), /BERTH_EGRESS_FIREWALL/);
});

test('the forward chain lets through replies, one user’s own bridge and allowed CIDRs before any drop', () => {
  const rules = firewallRestoreInput({ allowCidrs: ['10.1.2.0/24'], otherBridges: ['docker0'], nameservers: ['10.255.255.53'] })
    .split('\n')
    .filter((line) => line.startsWith(`-A ${FORWARD_CHAIN} `));
  const index = (fragment: string) => {
    const i = rules.findIndex((rule) => rule.includes(fragment));
    assert.ok(i >= 0, `${fragment} in ${rules.join('\n')}`);
    return i;
  };
  const firstDrop = rules.findIndex((rule) => rule.endsWith('-j DROP'));
  for (const allowed of ['RELATED,ESTABLISHED', '--physdev-is-bridged', '-d 10.1.2.0/24 -j RETURN', '-d 10.255.255.53/32 -p udp --dport 53']) {
    assert.ok(index(allowed) < firstDrop, `${allowed} comes before the drops`);
  }
  for (const dropped of ['-o bth+ -j DROP', '-o docker0 -j DROP', '-d 169.254.0.0/16 -j DROP', '-d 10.0.0.0/8 -j DROP', '-d 100.64.0.0/10 -j DROP']) index(dropped);
  // Only users' networks are confined: what leaves them, and what enters them other than to a published port.
  const entering = '! -i bth+ -o bth+ -m conntrack ! --ctstate DNAT -j DROP';
  index(entering);
  assert.ok(rules.every((rule) => rule.includes('-i bth+') || rule.includes('RELATED,ESTABLISHED') || rule.endsWith(entering)), 'only users’ networks are confined');
});

test('host nameservers: IPv4, loopback ones left out', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-resolv-'));
  try {
    await writeFile(join(dir, 'resolv.conf'), '# x\nnameserver 10.0.0.2\nnameserver 127.0.0.53\nnameserver ::1\nsearch example\n');
    assert.deepEqual(await hostNameservers([join(dir, 'resolv.conf')]), ['10.0.0.2']);
    assert.deepEqual(await hostNameservers([join(dir, 'missing')]), []);
    // systemd-resolved: /etc/resolv.conf names only its stub; the upstream servers are in its own file.
    await writeFile(join(dir, 'stub.conf'), 'nameserver 127.0.0.53\noptions edns0\n');
    await writeFile(join(dir, 'upstream.conf'), 'nameserver 172.31.0.2\n');
    assert.deepEqual(await hostNameservers([join(dir, 'stub.conf'), join(dir, 'upstream.conf')]), ['172.31.0.2']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bridge names fit the kernel’s 15 characters and differ per host and per user', () => {
  const a = userBridgeName('host-a', 'u1');
  assert.match(a, /^bth[0-9a-f]{12}$/);
  assert.notEqual(a, userBridgeName('host-b', 'u1'));
  assert.notEqual(a, userBridgeName('host-a', 'u2'));
});

test('Docker’s reasons reach users without the host’s paths', () => {
  const m = (message: string) => ({ json: { message } });
  const cgroup = publicDockerMessage(m('failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error setting cgroup config for procHooks process: failed to write "100": write /sys/fs/cgroup/cpu/docker/34bd/cpu.cfs_quota_us: invalid argument: unknown'));
  assert.equal(cgroup, "the host refused the container's resource limits (invalid argument)");
  assert.equal(
    publicDockerMessage(m('error creating overlay mount to /root/.local/state/berth/docker/host-a/data/overlay2/abc/merged: no such file or directory')),
    'error creating overlay mount to <host path>: no such file or directory',
  );
  // Image references and URLs are not paths.
  assert.equal(publicDockerMessage(m('No such image: 127.0.0.1:5000/library/httpd:latest')), 'No such image: 127.0.0.1:5000/library/httpd:latest');
  assert.equal(publicDockerMessage(m('Get http://127.0.0.1:5000/v2/: EOF')), 'Get http://127.0.0.1:5000/v2/: EOF');
});
