/** Admin · Hosts: up or down, engine version, last heartbeat, containers on each; "Ping". */
import { useState } from 'react';
import { api, unwrap } from '../../api/client';
import type { Host } from '../../api/types';
import { useI18n } from '../../i18n';
import { usePoll } from '../../lib/hooks';
import { ActionButton, DataTable, Notice, Page } from '../../components/ui';

const POLL_MS = 5000;

export function HostsPage() {
  const { t, date } = useI18n();
  const [notice, setNotice] = useState<string>();
  const hosts = usePoll(async (signal) => (await unwrap(api.GET('/api/v1/hosts/', { signal }))).items, 'hosts', POLL_MS);
  const rows = hosts.data ?? [];
  return (
    <Page title={t('hosts.title')}>
      <Notice>{notice}</Notice>
      <DataTable
        loaded={hosts}
        count={rows.length}
        emptyText={t('hosts.none')}
        label={t('hosts.title')}
        head={[t('common.host'), t('hosts.status'), t('hosts.engine'), t('hosts.heartbeat'), t('hosts.containers'), t('common.actions')]}
      >
        {rows.map((host) => (
          <tr key={host.id}>
            <td>{host.id}</td>
            <td>
              <span className={`state state-${host.status}`}>{host.status === 'up' ? t('hosts.up') : t('hosts.down')}</span>
            </td>
            <td>{host.engineVersion}</td>
            <td>{date(String(host.lastHeartbeatAt))}</td>
            <td className="num">{host.containers}</td>
            <td>
              <PingButton host={host} onPinged={setNotice} />
            </td>
          </tr>
        ))}
      </DataTable>
    </Page>
  );
}

function PingButton({ host, onPinged }: { host: Host; onPinged: (message: string) => void }) {
  const { t } = useI18n();
  return (
    <ActionButton
      label={t('hosts.ping')}
      run={async () => {
        const pong = await unwrap(api.POST('/api/v1/hosts/{id}/ping', { params: { path: { id: host.id } } }));
        onPinged(t('hosts.pinged', host.id, pong.durationMs, pong.version));
      }}
    />
  );
}
