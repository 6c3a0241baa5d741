/** Small pieces every page uses: alerts, a page's frame, tables, paging, a confirmation dialog. */
import { useEffect, useId, useRef, type ReactNode, type SelectHTMLAttributes } from 'react';
import { useI18n } from '../i18n';
import { useAction, type Loaded } from '../lib/hooks';
import { hasNavigated } from '../lib/router';

/** An error as an alert (role="alert"), announced when it appears. */
export function ErrorAlert({ error, onRetry }: { error: string | undefined; onRetry?: () => void }) {
  const { t } = useI18n();
  if (!error) return null;
  return (
    <div className="alert" role="alert">
      <span>{error}</span>
      {onRetry ? (
        <button type="button" className="link-button" onClick={onRetry}>
          {t('common.retry')}
        </button>
      ) : null}
    </div>
  );
}

/**
 * A select with its label (by `for`, not around it: a label around a select takes the options'
 * text into its name).
 */
export function SelectField({ label, children, ...select }: { label: string; children: ReactNode } & SelectHTMLAttributes<HTMLSelectElement>) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} {...select}>
        {children}
      </select>
    </div>
  );
}

/** A success or progress message, announced politely. */
export function Notice({ children }: { children: ReactNode }) {
  if (!children) return null;
  return (
    <p className="notice" role="status">
      {children}
    </p>
  );
}

/**
 * A page: its title (also the document's) as the h1, focused when the console moved to it (for
 * screen readers; on the first load the browser's own focus is left alone).
 */
export function Page({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Berth`;
  }, [title]);
  useEffect(() => {
    if (hasNavigated()) heading.current?.focus({ preventScroll: true });
  }, []);
  return (
    <>
      <div className="page-head">
        <h1 ref={heading} tabIndex={-1}>
          {title}
        </h1>
        {actions}
      </div>
      {children}
    </>
  );
}

/**
 * A titled part of a page. With `region`, a landmark named by its heading (the dashboard's
 * "Balance"); otherwise not, so that field labels such as "Image" stay the only names of a
 * page that contain them.
 */
export function Section({
  title,
  children,
  className,
  region = false,
}: {
  title: string;
  children: ReactNode;
  className?: string;
  region?: boolean;
}) {
  const id = useId();
  return (
    <section aria-labelledby={region ? id : undefined} className={className ? `card ${className}` : 'card'}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

/** A table named by its (visually hidden) caption, scrolling sideways on a narrow screen. */
export function Table({ label, head, children }: { label: string; head: ReactNode[]; children: ReactNode }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">{label}</caption>
        <thead>
          <tr>
            {head.map((cell, i) => (
              <th key={i} scope="col">
                {cell}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** What a list shows before its first answer, when empty, or nothing when it has rows. */
function ListState({ loading, empty, emptyText }: { loading: boolean; empty: boolean; emptyText: string }) {
  const { t } = useI18n();
  if (loading) return <p className="muted">{t('app.loading')}</p>;
  if (empty) return <p className="muted">{emptyText}</p>;
  return null;
}

export interface Paging {
  page: number;
  pageSize: number;
  total: number;
  onPage: (page: number) => void;
}

/**
 * A loaded list as a table: its error (with "Retry"), "Loading…" before the first answer,
 * `emptyText` when empty, else the rows and, when paged, the pager.
 */
export function DataTable({
  loaded,
  count,
  emptyText,
  label,
  head,
  paging,
  children,
}: {
  loaded: Pick<Loaded<unknown>, 'error' | 'loading' | 'reload'>;
  count: number;
  emptyText: string;
  label: string;
  head: ReactNode[];
  paging?: Paging;
  children: ReactNode;
}) {
  return (
    <>
      <ErrorAlert error={loaded.error} onRetry={loaded.reload} />
      <ListState loading={loaded.loading && count === 0} empty={count === 0} emptyText={emptyText} />
      {count > 0 ? (
        <>
          <Table label={label} head={head}>
            {children}
          </Table>
          {paging ? <Pager {...paging} /> : null}
        </>
      ) : null}
    </>
  );
}

/** A button that runs an API call: disabled while it runs, its failure shown beside it. */
export function ActionButton({
  label,
  run,
  className,
  disabled = false,
}: {
  label: string;
  run: () => Promise<void>;
  className?: string;
  disabled?: boolean;
}) {
  const action = useAction();
  return (
    <>
      <button type="button" className={className} disabled={disabled || action.busy} aria-busy={action.busy} onClick={() => void action.run(run)}>
        {label}
      </button>
      <ErrorAlert error={action.error} />
    </>
  );
}

function Pager({ page, pageSize, total, onPage }: Paging) {
  const { t } = useI18n();
  const pages = Math.max(1, Math.ceil(total / pageSize));
  return (
    <div className="pager">
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        {t('common.previous')}
      </button>
      <span>
        {t('common.page', Math.min(page, pages), pages)} · {t('common.total', total)}
      </span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)}>
        {t('common.next')}
      </button>
    </div>
  );
}

/**
 * A modal form (<dialog>: focus kept inside, Escape cancels): a confirmation, or fields such
 * as a credit's. `submitLabel` names the button that does it (`danger` for a removal); the
 * dialog stays open while `busy` and shows `error`.
 */
export function Dialog({
  title,
  children,
  submitLabel,
  danger = false,
  busy,
  error,
  onSubmit,
  onCancel,
}: {
  title: string;
  children: ReactNode;
  submitLabel: string;
  danger?: boolean;
  busy: boolean;
  error: string | undefined;
  onSubmit: () => void;
  onCancel: () => void;
}) {
  const { t } = useI18n();
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby={id}
      onCancel={(event) => {
        event.preventDefault();
        if (!busy) onCancel();
      }}
    >
      <form
        onSubmit={(event) => {
          event.preventDefault();
          onSubmit();
        }}
      >
        <h2 id={id}>{title}</h2>
        {children}
        <ErrorAlert error={error} />
        <div className="buttons">
          <button type="submit" className={danger ? 'danger' : 'primary'} disabled={busy} aria-busy={busy}>
            {submitLabel}
          </button>
          <button type="button" onClick={onCancel} disabled={busy}>
            {t('common.cancel')}
          </button>
        </div>
      </form>
    </dialog>
  );
}
