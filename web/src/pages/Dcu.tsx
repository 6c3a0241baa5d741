/**
 * DCU: "Image" and "Start"; the task list (filtered by image and state, paged) with state,
 * progress and bytes done while it runs, "Cancel" while running, "Download" when completed,
 * the error when failed; polled every 2.5 s.
 */
import { useState, type FormEvent } from 'react';
import { api, apiUrl, unwrap } from '../api/client';
import type { DcuState, DcuTask } from '../api/types';
import { useI18n } from '../i18n';
import { useAction, usePoll } from '../lib/hooks';
import { useSession } from '../lib/session';
import { DCU_RUNNING, DCU_STATE_KEYS, DcuStateText, dcuTime } from '../components/DcuStateText';
import { ActionButton, DataTable, ErrorAlert, Notice, Page, Section, SelectField } from '../components/ui';
import { HostSelect } from '../components/HostSelect';

const PAGE_SIZE = 10;
const POLL_MS = 2500;

export function DcuPage() {
  const { t } = useI18n();
  const { user } = useSession();
  const [image, setImage] = useState('');
  const [host, setHost] = useState('');
  const [filter, setFilter] = useState('');
  const [state, setState] = useState<DcuState | ''>('');
  const [page, setPage] = useState(1);
  const [notice, setNotice] = useState<string>();
  const start = useAction();
  const list = usePoll(
    (signal) =>
      unwrap(
        api.GET('/api/dcu/query', {
          params: { query: { docker_image_name: filter.trim(), state, page: String(page), page_size: String(PAGE_SIZE) } },
          signal,
        }),
      ),
    `dcu:${filter.trim()}:${state}:${page}`,
    POLL_MS,
  );
  const tasks = list.data?.data.items ?? [];

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void start.run(async () => {
      const name = image.trim();
      await unwrap(api.POST('/api/dcu/start', { body: { username: user.username, docker_image_name: name, ...(host ? { host } : {}) } }));
      setNotice(t('dcu.started', name));
      setImage('');
      setPage(1);
      list.reload();
    });
  };

  return (
    <Page title={t('dcu.title')}>
      <Section title={t('dcu.startHeading')}>
        <p className="muted">{t('dcu.intro')}</p>
        <form className="inline-form" onSubmit={submit}>
          <label>
            {t('dcu.image')}
            <input name="image" required maxLength={1024} placeholder="busybox:latest" value={image} onChange={(e) => setImage(e.target.value)} />
          </label>
          <HostSelect value={host} onChange={setHost} />
          <button type="submit" className="primary" disabled={start.busy} aria-busy={start.busy}>
            {t('dcu.start')}
          </button>
        </form>
        <ErrorAlert error={start.error} />
        <Notice>{notice}</Notice>
      </Section>

      <Section title={t('dcu.tasks')}>
        <div className="inline-form">
          <label>
            {t('dcu.filterImage')}
            <input
              type="search"
              placeholder="busybox"
              value={filter}
              onChange={(e) => {
                setFilter(e.target.value);
                setPage(1);
              }}
            />
          </label>
          <SelectField
            label={t('dcu.filterState')}
            value={state}
            onChange={(e) => {
              setState(e.target.value as DcuState | '');
              setPage(1);
            }}
          >
            <option value="">{t('common.all')}</option>
            {(Object.keys(DCU_STATE_KEYS) as DcuState[]).map((s) => (
              <option key={s} value={s}>
                {t(DCU_STATE_KEYS[s])}
              </option>
            ))}
          </SelectField>
        </div>
        <DataTable
          loaded={list}
          count={tasks.length}
          emptyText={t('dcu.none')}
          label={t('dcu.tasks')}
          head={[
            t('common.image'),
            t('common.state'),
            t('dcu.progress'),
            t('dcu.startTime'),
            t('dcu.duration'),
            t('dcu.archive'),
            t('common.charge'),
            t('common.actions'),
          ]}
          paging={{ page, pageSize: PAGE_SIZE, total: list.data?.data.total ?? 0, onPage: setPage }}
        >
          {tasks.map((task) => (
            <TaskRow key={task.task_id} task={task} onChanged={list.reload} />
          ))}
        </DataTable>
      </Section>
    </Page>
  );
}

function TaskRow({ task, onChanged }: { task: DcuTask; onChanged: () => void }) {
  const { t, date, bytes, money, number } = useI18n();
  const [cancelling, setCancelling] = useState(false);
  const running = DCU_RUNNING.includes(task.state);
  const bytesText = task.bytes_total > 0 ? t('dcu.bytes', bytes(task.bytes_done), bytes(task.bytes_total)) : '';
  return (
    <tr>
      <td className="wrap">{task.docker_image_name}</td>
      <td>
        <DcuStateText task={task} />
        {task.state === 'failed' && task.error_message ? <div className="error-text">{task.error_message}</div> : null}
      </td>
      <td>
        {task.state !== 'failed' ? (
          <label className="progress-cell">
            <span className="visually-hidden">{`${t('dcu.progress')} ${task.docker_image_name}`}</span>
            <progress max={100} value={task.progress} aria-valuetext={`${task.progress}% ${bytesText}`.trim()} />
            <span className="muted small">{running && bytesText ? bytesText : `${task.progress}%`}</span>
          </label>
        ) : (
          '—'
        )}
      </td>
      <td>{date(dcuTime(task.start_time))}</td>
      <td className="num">{task.duration > 0 ? `${number(task.duration / 1000, 1)} s` : '—'}</td>
      <td className="num">{task.compressed_bytes !== null ? bytes(task.compressed_bytes) : '—'}</td>
      <td className="num">{money(task.charged)}</td>
      <td>
        <div className="actions">
          {running ? (
            <ActionButton
              label={cancelling ? t('dcu.cancelRequested') : t('dcu.cancel')}
              disabled={cancelling}
              run={async () => {
                await unwrap(api.POST('/api/dcu/cancel/{task_id}', { params: { path: { task_id: task.task_id } } }));
                setCancelling(true);
                onChanged();
              }}
            />
          ) : null}
          {task.state === 'completed' && !task.artifacts_expired ? (
            <a className="button" href={apiUrl('/api/dcu/download/{task_id}', { task_id: task.task_id })} download>
              {t('dcu.download')}
            </a>
          ) : null}
          {task.state === 'completed' && task.artifacts_expired ? <span className="muted">{t('dcu.expired')}</span> : null}
        </div>
      </td>
    </tr>
  );
}
