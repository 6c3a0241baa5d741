/** Dashboard: the balance (with a warning when it cannot pay the next period), running containers, recent pulls and DCU tasks. */
import { api, unwrap } from '../api/client';
import { useI18n } from '../i18n';
import { usePoll } from '../lib/hooks';
import { useSession } from '../lib/session';
import { Link } from '../lib/router';
import { AddressLink } from '../components/AddressLink';
import { DcuStateText, dcuTime } from '../components/DcuStateText';
import { DataTable, ErrorAlert, Page, Section } from '../components/ui';

const POLL_MS = 3000;
const RECENT = 5;

export function DashboardPage() {
  const { t, money, date, bytes } = useI18n();
  const { user } = useSession();
  const me = usePoll((signal) => unwrap(api.GET('/api/v1/users/me', { signal })), 'me', POLL_MS);
  const running = usePoll(
    (signal) =>
      unwrap(
        api.GET('/api/v1/containers/', {
          // An admin's list holds everyone's unless filtered by user.
          params: { query: { state: 'running', page: 1, pageSize: 200, ...(user.role === 'admin' ? { userId: user.id } : {}) } },
          signal,
        }),
      ),
    `running:${user.id}`,
    POLL_MS,
  );
  // The caller's own newest images (the list holds the public ones too).
  const pulls = usePoll(
    async (signal) => {
      const { items } = await unwrap(api.GET('/api/v1/images/', { params: { query: { page: 1, pageSize: 50 } }, signal }));
      return items.filter((image) => image.userId === user.id).slice(0, RECENT);
    },
    `pulls:${user.id}`,
    POLL_MS,
  );
  const tasks = usePoll(
    (signal) => unwrap(api.GET('/api/dcu/query', { params: { query: { page: '1', page_size: String(RECENT) } }, signal })),
    'dcu',
    POLL_MS,
  );

  const balance = me.data?.balance;
  const containers = (running.data?.items ?? []).filter((c) => c.userId === user.id);
  // What the next period of every running container costs, and when the first is charged.
  const billed = containers.filter((c) => c.nextChargeAt && c.pricePerPeriod !== null);
  const duePerPeriod = billed.reduce((sum, c) => sum + (c.pricePerPeriod ?? 0), 0);
  const firstCharge = billed.map((c) => c.nextChargeAt ?? '').sort()[0];
  const images = pulls.data ?? [];
  const dcu = tasks.data?.data.items ?? [];

  return (
    <Page title={t('dashboard.title')}>
      <div className="grid">
        <Section title={t('dashboard.balance')} className="balance" region>
          <ErrorAlert error={me.error} />
          <p className="big">{balance === undefined ? (me.loading ? t('app.loading') : '—') : money(balance)}</p>
          {balance !== undefined && firstCharge !== undefined && balance < duePerPeriod ? (
            <p className="warning" role="alert">
              {t('dashboard.lowBalance', money(duePerPeriod), date(firstCharge))}
            </p>
          ) : null}
        </Section>

        <Section title={t('dashboard.running')}>
          <DataTable
            loaded={running}
            count={containers.length}
            emptyText={t('dashboard.noRunning')}
            label={t('dashboard.running')}
            head={[t('common.name'), t('containers.address'), t('containers.chargeSoFar'), t('dashboard.perPeriod')]}
          >
            {containers.map((c) => (
              <tr key={c.id}>
                <td>
                  <Link to={`/containers/${c.id}`}>{c.name}</Link>
                </td>

                <td>
                  <AddressLink container={c} />
                </td>
                <td className="num">{money(c.charged)}</td>
                <td className="num">{c.pricePerPeriod === null ? '—' : money(c.pricePerPeriod)}</td>
              </tr>
            ))}
          </DataTable>
        </Section>

        <Section title={t('dashboard.recentPulls')}>
          <DataTable
            loaded={pulls}
            count={images.length}
            emptyText={t('dashboard.noPulls')}
            label={t('dashboard.recentPulls')}
            head={[t('images.reference'), t('common.size'), t('common.charge'), t('common.date')]}
          >
            {images.map((image) => (
              <tr key={image.id}>
                <td className="wrap">{image.reference}</td>
                <td className="num">{bytes(image.sizeBytes)}</td>
                <td className="num">{money(image.charged)}</td>
                <td>{date(String(image.createdAt))}</td>
              </tr>
            ))}
          </DataTable>
        </Section>

        <Section title={t('dashboard.recentDcu')}>
          <DataTable
            loaded={tasks}
            count={dcu.length}
            emptyText={t('dashboard.noDcu')}
            label={t('dashboard.recentDcu')}
            head={[t('common.image'), t('common.state'), t('dcu.startTime')]}
          >
            {dcu.map((task) => (
              <tr key={task.task_id}>
                <td className="wrap">{task.docker_image_name}</td>
                <td>
                  <DcuStateText task={task} />
                </td>
                <td>{date(dcuTime(task.start_time))}</td>
              </tr>
            ))}
          </DataTable>
        </Section>
      </div>
    </Page>
  );
}
