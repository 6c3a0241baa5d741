/**
 * Containers: the run form ("Image", "Container port", "Memory (MB)", "CPUs", "Name",
 * "Environment variables", "Run") and the table (state, host, address, charge so far) with
 * "Start", "Stop", "Restart", "Remove" per container, polled every 2.5 s.
 */
import { useEffect, useId, useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client';
import type { Image } from '../api/types';
import { useI18n } from '../i18n';
import { useAction, usePoll } from '../lib/hooks';
import { Link, useLocation } from '../lib/router';
import { AddressLink } from '../components/AddressLink';
import { parseEnv } from '../lib/env';
import { ContainerActions } from '../components/ContainerActions';
import { ContainerState } from '../components/ContainerState';
import { DataTable, ErrorAlert, Notice, Page, Section, SelectField } from '../components/ui';

const PAGE_SIZE = 20;
const POLL_MS = 2500;

export function ContainersPage() {
  const { t, money } = useI18n();
  const { query } = useLocation();
  const imageParam = query.get('image') ?? '';
  const [page, setPage] = useState(1);
  const [showRemoved, setShowRemoved] = useState(false);
  const [notice, setNotice] = useState<string>();
  const list = usePoll(
    (signal) =>
      unwrap(
        api.GET('/api/v1/containers/', {
          params: { query: { page, pageSize: PAGE_SIZE, ...(showRemoved ? { state: 'removed' as const } : {}) } },
          signal,
        }),
      ),
    `containers:${page}:${showRemoved}`,
    POLL_MS,
  );
  const containers = list.data?.items ?? [];

  return (
    <Page title={t('containers.title')}>
      <Section title={t('containers.runHeading')}>
        <RunForm
          initialImage={imageParam}
          onStarted={(name) => {
            setNotice(t('containers.started', name));
            list.reload();
          }}
        />
      </Section>
      <Section title={t('containers.list')}>
        <Notice>{notice}</Notice>
        <label className="check">
          <input
            type="checkbox"
            checked={showRemoved}
            onChange={(e) => {
              setShowRemoved(e.target.checked);
              setPage(1);
            }}
          />
          {t('containers.showRemoved')}
        </label>
        <DataTable
          loaded={list}
          count={containers.length}
          emptyText={t('containers.none')}
          label={t('containers.list')}
          head={[
            t('common.name'),
            t('common.image'),
            t('common.state'),
            t('common.host'),
            t('containers.address'),
            t('containers.chargeSoFar'),
            t('common.actions'),
          ]}
          paging={{ page, pageSize: PAGE_SIZE, total: list.data?.total ?? 0, onPage: setPage }}
        >
          {containers.map((c) => {
            return (
              <tr key={c.id}>
                <td>
                  <Link to={`/containers/${c.id}`}>{c.name}</Link>
                </td>
                <td className="wrap">{c.image}</td>
                <td>
                  <ContainerState container={c} />
                  {c.stateReason ? <div className="muted small">{c.stateReason}</div> : null}
                </td>
                <td>{c.host}</td>
                <td>
                  <AddressLink container={c} />
                </td>
                <td className="num">{money(c.charged)}</td>
                <td>
                  <ContainerActions
                    container={c}
                    onChanged={(message) => {
                      if (message) setNotice(message);
                      list.reload();
                    }}
                  />
                </td>
              </tr>
            );
          })}
        </DataTable>
      </Section>
    </Page>
  );
}

/** The first port an image exposes ("80/tcp" → 80). */
const exposedPort = (image: Image | undefined) => {
  const port = Number.parseInt(image?.ports[0] ?? '', 10);
  return Number.isFinite(port) ? port : undefined;
};

function RunForm({ initialImage, onStarted }: { initialImage: string; onStarted: (name: string) => void }) {
  const { t, money } = useI18n();
  const hintId = useId();
  const envHintId = useId();
  const images = usePoll((signal) => unwrap(api.GET('/api/v1/images/', { params: { query: { page: 1, pageSize: 200 } }, signal })), 'run-images');
  const [imageId, setImageId] = useState(initialImage);
  const [port, setPort] = useState('');
  const [memory, setMemory] = useState('');
  const [cpus, setCpus] = useState('');
  const [name, setName] = useState('');
  const [envText, setEnvText] = useState('');
  const action = useAction();
  const chosen = images.data?.items.find((i) => i.id === imageId);

  // The price per period of these limits (nothing is created), shown before running.
  const [quote, setQuote] = useState<{ price: number; seconds: number }>();
  useEffect(() => {
    const controller = new AbortController();
    const timer = window.setTimeout(() => {
      const body = {
        ...(memory && Number(memory) >= 6 ? { memoryMb: Math.trunc(Number(memory)) } : {}),
        ...(cpus && Number(cpus) > 0 ? { cpus: Number(cpus) } : {}),
      };
      unwrap(api.POST('/api/v1/containers/quote', { body, signal: controller.signal })).then(
        (q) => setQuote({ price: q.pricePerPeriod, seconds: q.billingPeriodSeconds }),
        () => setQuote(undefined),
      );
    }, 300);
    return () => {
      controller.abort();
      window.clearTimeout(timer);
    };
  }, [memory, cpus]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      const parsed = parseEnv(envText);
      if ('invalid' in parsed) throw new Error(t('containers.envInvalid', parsed.invalid));
      const body = {
        imageId,
        ...(name.trim() ? { name: name.trim() } : {}),
        ...(port ? { containerPort: Number(port) } : {}),
        ...(memory ? { memoryMb: Number(memory) } : {}),
        ...(cpus ? { cpus: Number(cpus) } : {}),
        ...(Object.keys(parsed.env).length > 0 ? { env: parsed.env } : {}),
      };
      const created = await unwrap(api.POST('/api/v1/containers/', { params: { query: { wait: false } }, body }));
      onStarted(name.trim() || (chosen?.reference ?? created.id));
      setName('');
    });
  };

  return (
    <form className="form-grid" onSubmit={submit}>
      <SelectField label={t('containers.image')} name="image" required value={imageId} onChange={(e) => setImageId(e.target.value)}>
        <option value="">{t('containers.chooseImage')}</option>
        {(images.data?.items ?? []).map((image) => (
          <option key={image.id} value={image.id}>
            {image.reference} ({image.host})
          </option>
        ))}
      </SelectField>
      <label>
        {t('containers.port')}
        <input
          name="containerPort"
          type="number"
          min={1}
          max={65535}
          inputMode="numeric"
          placeholder={String(exposedPort(chosen) ?? '')}
          aria-describedby={hintId}
          value={port}
          onChange={(e) => setPort(e.target.value)}
        />
      </label>
      <label>
        {t('containers.memory')}
        <input
          name="memoryMb"
          type="number"
          min={6}
          inputMode="numeric"
          aria-describedby={hintId}
          value={memory}
          onChange={(e) => setMemory(e.target.value)}
        />
      </label>
      <label>
        {t('containers.cpus')}
        <input
          name="cpus"
          type="number"
          min={0.001}
          step={0.001}
          inputMode="decimal"
          aria-describedby={hintId}
          value={cpus}
          onChange={(e) => setCpus(e.target.value)}
        />
      </label>
      <label>
        {t('containers.name')}
        <input name="name" pattern="[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,62}" maxLength={63} value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <div className="wide field">
        <label>
          {t('containers.env')}
          <textarea
            name="env"
            rows={3}
            spellCheck={false}
            aria-describedby={envHintId}
            value={envText}
            onChange={(e) => setEnvText(e.target.value)}
          />
        </label>
        <span id={envHintId} className="muted small">
          {t('containers.envHint')}
        </span>
      </div>
      <p id={hintId} className="muted small wide">
        {t('containers.defaultHint')} {quote ? t('containers.quote', money(quote.price), quote.seconds) : null}
      </p>
      <ErrorAlert error={images.error} />
      <ErrorAlert error={action.error} />
      <div className="wide">
        <button type="submit" className="primary" disabled={action.busy} aria-busy={action.busy}>
          {t('containers.run')}
        </button>
      </div>
    </form>
  );
}
