/** Admin · Releases: the nightly release's next runs, "Run now", past reports with their failures. */
import { useState } from 'react';
import { api, unwrap } from '../../api/client';
import type { ReleaseRun } from '../../api/types';
import { useI18n } from '../../i18n';
import { usePoll } from '../../lib/hooks';
import { ActionButton, DataTable, ErrorAlert, Notice, Page, Section } from '../../components/ui';

const PAGE_SIZE = 20;
const POLL_MS = 5000;

export function ReleasesPage() {
  const { t, date, money } = useI18n();
  const [page, setPage] = useState(1);
  const [notice, setNotice] = useState<string>();
  const [open, setOpen] = useState<string>();
  const overview = usePoll(
    (signal) => unwrap(api.GET('/api/v1/admin/releases/', { params: { query: { page, pageSize: PAGE_SIZE } }, signal })),
    `releases:${page}`,
    POLL_MS,
  );
  const schedule = overview.data?.schedule;
  const runs = overview.data?.items ?? [];
  const counts = (c: ReleaseRun['containers']) => (c ? `${c.removed} / ${c.failed}` : '—');

  return (
    <Page title={t('releases.title')}>
      <ErrorAlert error={overview.error} onRetry={overview.reload} />
      <Section title={t('releases.schedule')}>
        {schedule === null ? <p className="muted">{t('releases.noSchedule')}</p> : null}
        {schedule ? (
          <dl className="details">
            <dt>{t('releases.status')}</dt>
            <dd>{schedule.paused ? t('releases.paused') : t('releases.active')}</dd>
            <dt>{t('releases.timezone')}</dt>
            <dd>{schedule.timezone}</dd>
            <dt>{t('releases.nextRuns')}</dt>
            <dd>
              <ul className="plain">
                {schedule.nextRuns.map((at) => (
                  <li key={String(at)}>{date(String(at))}</li>
                ))}
              </ul>
            </dd>
          </dl>
        ) : null}
        <ActionButton
          label={t('releases.runNow')}
          className="primary"
          run={async () => {
            await unwrap(api.POST('/api/v1/admin/releases/'));
            setNotice(t('releases.triggered'));
            overview.reload();
          }}
        />
        <Notice>{notice}</Notice>
      </Section>
      <Section title={t('releases.past')}>
        <DataTable
          loaded={{ ...overview, error: undefined }}
          count={runs.length}
          emptyText={t('releases.none')}
          label={t('releases.past')}
          head={[
            t('releases.started'),
            t('releases.ended'),
            t('releases.status'),
            t('releases.containers'),
            t('releases.images'),
            t('releases.refunded'),
            t('releases.failures'),
          ]}
          paging={{ page, pageSize: PAGE_SIZE, total: overview.data?.total ?? 0, onPage: setPage }}
        >
          {runs.map((run) => (
            <RunRows
              key={run.id}
              run={run}
              open={open === run.id}
              onToggle={() => setOpen(open === run.id ? undefined : run.id)}
              counts={counts}
              format={{ date, money }}
            />
          ))}
        </DataTable>
      </Section>
    </Page>
  );
}

function RunRows({
  run,
  open,
  onToggle,
  counts,
  format,
}: {
  run: ReleaseRun;
  open: boolean;
  onToggle: () => void;
  counts: (c: ReleaseRun['containers']) => string;
  format: { date: (s: string | null) => string; money: (n: number) => string };
}) {
  const { t } = useI18n();
  return (
    <>
      <tr>
        <td>{format.date(String(run.startedAt))}</td>
        <td>{format.date(run.endedAt === null ? null : String(run.endedAt))}</td>
        <td>{run.status}</td>
        <td className="num">{counts(run.containers)}</td>
        <td className="num">{counts(run.images)}</td>
        <td className="num">{format.money(run.refundedTotal)}</td>
        <td>
          <button type="button" aria-expanded={open} onClick={onToggle}>
            {open ? t('releases.hide') : t('common.details')}
          </button>
        </td>
      </tr>
      {open ? (
        <tr>
          <td colSpan={7}>
            <Failures id={run.id} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

function Failures({ id }: { id: string }) {
  const { t } = useI18n();
  const detail = usePoll((signal) => unwrap(api.GET('/api/v1/admin/releases/{id}', { params: { path: { id } }, signal })), `release:${id}`);
  const failures = detail.data?.failures ?? [];
  return (
    <div>
      <DataTable
        loaded={detail}
        count={failures.length}
        emptyText={t('releases.noFailures')}
        label={t('releases.failures')}
        head={[t('releases.phase'), t('releases.target'), t('common.host'), t('releases.reason')]}
      >
        {failures.map((f, i) => (
          <tr key={`${f.phase}:${f.id}:${i}`}>
            <td>{f.phase}</td>
            <td className="wrap">{f.id}</td>
            <td>{f.hostId}</td>
            <td className="wrap">{f.reason}</td>
          </tr>
        ))}
      </DataTable>
    </div>
  );
}
