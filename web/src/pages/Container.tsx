/**
 * One container: its details and operations, its logs ("Follow" streams new lines; "Download")
 * and live stats (CPU % and memory, as numbers and a chart) from the stats WebSocket, which
 * authenticates by the session cookie and closes when the page is left.
 */
import { useEffect, useId, useRef, useState } from 'react';
import { api, apiUrl, unwrap } from '../api/client';
import { readText } from '../api/streams';
import type { Container, StatsSample } from '../api/types';
import { useI18n, useErrorText } from '../i18n';
import { usePoll } from '../lib/hooks';
import { Link, navigate } from '../lib/router';
import { AddressLink } from '../components/AddressLink';
import { ContainerActions } from '../components/ContainerActions';
import { ContainerState } from '../components/ContainerState';
import { LineChart } from '../components/LineChart';
import { ErrorAlert, Notice, Page, Section } from '../components/ui';

const POLL_MS = 2500;

export function ContainerPage({ id }: { id: string }) {
  const { t, money, date } = useI18n();
  const container = usePoll((signal) => unwrap(api.GET('/api/v1/containers/{id}', { params: { path: { id } }, signal })), `container:${id}`, POLL_MS);
  const c = container.data;
  const [notice, setNotice] = useState<string>();

  return (
    <Page title={c?.name ?? t('app.loading')} actions={<Link to="/containers">{t('container.back')}</Link>}>
      <ErrorAlert error={container.error} onRetry={container.reload} />
      <Notice>{notice}</Notice>
      {c ? (
        <>
          <Section title={t('container.details')}>
            <dl className="details">
              <dt>{t('common.state')}</dt>
              <dd>
                <ContainerState container={c} />
              </dd>
              {c.stateReason ? (
                <>
                  <dt>{t('container.reason')}</dt>
                  <dd>{c.stateReason}</dd>
                </>
              ) : null}
              <dt>{t('common.image')}</dt>
              <dd className="wrap">{c.image}</dd>
              <dt>{t('common.host')}</dt>
              <dd>{c.host}</dd>
              <dt>{t('containers.address')}</dt>
              <dd>
                <AddressLink container={c} />
              </dd>
              <dt>{t('container.memory')}</dt>
              <dd>{c.memoryMb} MB</dd>
              <dt>{t('container.cpus')}</dt>
              <dd>{c.cpus}</dd>
              <dt>{t('containers.chargeSoFar')}</dt>
              <dd>{money(c.charged)}</dd>
              <dt>{t('container.pricePerPeriod')}</dt>
              <dd>{c.pricePerPeriod === null ? '—' : money(c.pricePerPeriod)}</dd>
              <dt>{t('common.created')}</dt>
              <dd>{date(String(c.createdAt))}</dd>
              <dt>{t('container.startedAt')}</dt>
              <dd>{date(c.startedAt === null ? null : String(c.startedAt))}</dd>
              {c.exitCode !== null ? (
                <>
                  <dt>{t('container.exitCode')}</dt>
                  <dd>{c.exitCode}</dd>
                </>
              ) : null}
            </dl>
            <ContainerActions
              container={c}
              onChanged={(message) => {
                if (message) {
                  setNotice(message);
                  navigate('/containers');
                } else container.reload();
              }}
            />
          </Section>
          <Stats container={c} />
          <Logs container={c} />
        </>
      ) : null}
    </Page>
  );
}

const WINDOW = 60;

function Stats({ container }: { container: Container }) {
  const { t, bytes, number } = useI18n();
  const running = container.state === 'running';
  const [samples, setSamples] = useState<StatsSample[]>([]);
  const [closed, setClosed] = useState<string>();
  const cpuId = useId();
  const memId = useId();

  useEffect(() => {
    if (!running) return;
    const url = new URL(apiUrl('/api/v1/containers/{id}/stats', { id: container.id }), window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    let keepAlive: number | undefined;
    socket.addEventListener('open', () => {
      setClosed(undefined);
      // The server closes a socket whose client sent nothing for its idle timeout.
      keepAlive = window.setInterval(() => socket.send('ping'), 30_000);
    });
    socket.addEventListener('message', (event: MessageEvent<string>) => {
      const message = JSON.parse(event.data) as StatsSample | { error: string };
      if ('error' in message) setClosed(message.error);
      else setSamples((all) => [...all.slice(-(WINDOW - 1)), message]);
    });
    socket.addEventListener('close', (event) => {
      window.clearInterval(keepAlive);
      setClosed((reason) => reason ?? (event.reason || (event.code === 1000 ? t('container.statsEnded') : String(event.code))));
    });
    return () => {
      window.clearInterval(keepAlive);
      // Closing a socket still connecting is logged by the browser as an error: close it once open.
      if (socket.readyState === WebSocket.CONNECTING) socket.addEventListener('open', () => socket.close(1000));
      else socket.close(1000);
    };
  }, [container.id, running, t]);

  const last = samples.at(-1);
  return (
    <Section title={t('container.stats')} region>
      {!running ? <p className="muted">{t('container.statsStopped')}</p> : null}
      {running && closed ? <p className="warning">{t('container.statsClosed', closed)}</p> : null}
      {running && !last && !closed ? <p className="muted">{t('container.statsWaiting')}</p> : null}
      {last ? (
        <>
          <dl className="stats">
            <div>
              <dt id={cpuId}>{t('container.cpu')}</dt>
              <dd aria-labelledby={cpuId} className="big">
                {number(last.cpuPercent, 1)}
              </dd>
            </div>
            <div>
              <dt id={memId}>{t('container.memoryUse')}</dt>
              <dd aria-labelledby={memId} className="big">
                {t('container.memoryOf', bytes(last.memoryUsage), bytes(last.memoryLimit))}
              </dd>
            </div>
          </dl>
          <LineChart
            label={t('container.chart')}
            points={WINDOW}
            series={[
              { name: t('container.chartCpu'), className: 'series-cpu', values: samples.map((s) => s.cpuPercent) },
              {
                name: t('container.chartMemory'),
                className: 'series-memory',
                values: samples.map((s) => (s.memoryLimit > 0 ? (100 * s.memoryUsage) / s.memoryLimit : 0)),
              },
            ]}
          />
        </>
      ) : null}
    </Section>
  );
}

const MAX_LOG_CHARS = 200_000;
const TAIL = '500';

function Logs({ container }: { container: Container }) {
  const { t } = useI18n();
  const errorText = useErrorText();
  const live = !container.removedAt;
  const [follow, setFollow] = useState(false);
  const [text, setText] = useState('');
  const [error, setError] = useState<string>();
  const [ended, setEnded] = useState(false);
  const [nonce, setNonce] = useState(0);
  const pre = useRef<HTMLPreElement>(null);

  // The log so far (tail), or, when following, the tail then every new line as it comes.
  useEffect(() => {
    if (!live) return;
    const controller = new AbortController();
    const url = apiUrl('/api/v1/containers/{id}/logs', { id: container.id }, { tail: TAIL, follow: String(follow) });
    let first = true;
    readText(url, controller.signal, (chunk) => {
      setText((current) => {
        const next = first ? chunk : current + chunk;
        first = false;
        return next.length > MAX_LOG_CHARS ? next.slice(next.indexOf('\n', next.length - MAX_LOG_CHARS) + 1) : next;
      });
    }).then(
      () => {
        if (first) setText('');
        setError(undefined);
        if (follow) {
          setEnded(true);
          setFollow(false);
        }
      },
      (err: unknown) => {
        if (controller.signal.aborted) return;
        setError(errorText(err));
        if (follow) setFollow(false);
      },
    );
    return () => controller.abort();
  }, [container.id, live, follow, nonce, errorText]);

  // Following keeps the newest line in view.
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text, follow]);

  const download = apiUrl('/api/v1/containers/{id}/logs/download', { id: container.id }, { tail: 'all' });
  return (
    <Section title={t('container.logs')}>
      <div className="toolbar">
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            checked={follow}
            disabled={!live}
            onChange={(e) => {
              setEnded(false);
              setFollow(e.target.checked);
            }}
          />
          {t('container.follow')}
        </label>
        <button type="button" disabled={!live || follow} onClick={() => setNonce((n) => n + 1)}>
          {t('container.refresh')}
        </button>
        {live ? (
          <a href={download} download>
            {t('container.download')}
          </a>
        ) : null}
      </div>
      <ErrorAlert error={error} />
      {ended ? <p className="muted">{t('container.followEnded')}</p> : null}
      <pre ref={pre} className="logs" tabIndex={0} aria-label={t('container.logs')} aria-live={follow ? 'off' : undefined}>
        {text || t('container.noLogs')}
      </pre>
    </Section>
  );
}
