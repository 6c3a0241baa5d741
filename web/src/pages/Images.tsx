/**
 * Images: pull ("Image", "Host", "Pull") with per-layer and total progress from the pull's
 * Server-Sent Events; the table with size and charge; per image "Run", "Delete" (after a
 * confirmation stating the refund) and, for admins, "Publish".
 */
import { useEffect, useState, type FormEvent } from 'react';
import { api, apiUrl, unwrap } from '../api/client';
import { readEvents } from '../api/streams';
import type { Image, PullProgress } from '../api/types';
import { useI18n, useErrorText } from '../i18n';
import { useAction, usePoll } from '../lib/hooks';
import { navigate } from '../lib/router';
import { useSession } from '../lib/session';
import { ActionButton, DataTable, Dialog, ErrorAlert, Notice, Page, Section } from '../components/ui';
import { HostSelect } from '../components/HostSelect';

const PAGE_SIZE = 20;
const POLL_MS = 5000;

interface Pull {
  pullId: string;
  image: string;
  progress: PullProgress | null;
  outcome?: { ok: true; text: string } | { ok: false; text: string };
}

export function ImagesPage() {
  const { t, money, date, bytes } = useI18n();
  const { user } = useSession();
  const isAdmin = user.role === 'admin';
  const [page, setPage] = useState(1);
  const list = usePoll(
    (signal) => unwrap(api.GET('/api/v1/images/', { params: { query: { page, pageSize: PAGE_SIZE } }, signal })),
    `images:${page}`,
    POLL_MS,
  );
  const images = list.data?.items ?? [];

  const [pulls, setPulls] = useState<Pull[]>([]);
  const [notice, setNotice] = useState<string>();
  const [deleting, setDeleting] = useState<Image>();

  return (
    <Page title={t('images.title')}>
      <Section title={t('images.pullHeading')}>
        <PullForm onStarted={(pull) => setPulls((p) => [pull, ...p])} />
        {pulls.map((pull) => (
          <PullProgressView
            key={pull.pullId}
            pull={pull}
            onUpdate={(next) => setPulls((all) => all.map((p) => (p.pullId === next.pullId ? next : p)))}
            onDone={list.reload}
            onDismiss={() => setPulls((all) => all.filter((p) => p.pullId !== pull.pullId))}
          />
        ))}
      </Section>

      <Section title={t('images.list')}>
        <Notice>{notice}</Notice>
        <DataTable
          loaded={list}
          count={images.length}
          emptyText={t('images.none')}
          label={t('images.list')}
          head={[
            t('images.reference'),
            t('common.host'),
            t('common.size'),
            t('common.charge'),
            t('images.visibility'),
            t('common.created'),
            t('common.actions'),
          ]}
          paging={{ page, pageSize: PAGE_SIZE, total: list.data?.total ?? 0, onPage: setPage }}
        >
          {images.map((image) => (
            <ImageRow
              key={image.id}
              image={image}
              canDelete={isAdmin || image.userId === user.id}
              isAdmin={isAdmin}
              onDelete={() => setDeleting(image)}
              onPublished={() => {
                setNotice(t('images.published', image.reference));
                list.reload();
              }}
              format={{ money, date, bytes }}
            />
          ))}
        </DataTable>
      </Section>

      {deleting ? (
        <DeleteDialog
          image={deleting}
          onClose={(message) => {
            setDeleting(undefined);
            if (message) {
              setNotice(message);
              list.reload();
            }
          }}
        />
      ) : null}
    </Page>
  );
}

function PullForm({ onStarted }: { onStarted: (pull: Pull) => void }) {
  const { t } = useI18n();
  const [image, setImage] = useState('');
  const [host, setHost] = useState('');
  const action = useAction();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      const name = image.trim();
      const started = await unwrap(
        api.POST('/api/v1/images/pull', { params: { query: { wait: false } }, body: { image: name, ...(host ? { host } : {}) } }),
      );
      // 202 with the pull's id (a 201 with the image only answers ?wait=true).
      if ('reference' in started) return;
      onStarted({ pullId: started.pullId, image: started.image, progress: null });
      setImage('');
    });
  };
  return (
    <form className="inline-form" onSubmit={submit}>
      <label>
        {t('images.image')}
        <input name="image" required maxLength={1024} placeholder="busybox:latest" value={image} onChange={(e) => setImage(e.target.value)} />
      </label>
      <HostSelect value={host} onChange={setHost} />
      <button type="submit" className="primary" disabled={action.busy} aria-busy={action.busy}>
        {t('images.pull')}
      </button>
      <ErrorAlert error={action.error} />
    </form>
  );
}

/** A pull's progress from its event stream, until its one `done` or `error` event. */
function PullProgressView({
  pull,
  onUpdate,
  onDone,
  onDismiss,
}: {
  pull: Pull;
  onUpdate: (pull: Pull) => void;
  onDone: () => void;
  onDismiss: () => void;
}) {
  const { t, money, bytes } = useI18n();
  const errorText = useErrorText();
  const finished = pull.outcome !== undefined;

  useEffect(() => {
    if (finished) return;
    const controller = new AbortController();
    let current = pull;
    const update = (next: Pull) => {
      current = next;
      onUpdate(next);
    };
    readEvents(apiUrl('/api/v1/images/pulls/{pullId}/events', { pullId: pull.pullId }), controller.signal, ({ event, data }) => {
      const payload = JSON.parse(data) as unknown;
      if (event === 'progress') update({ ...current, progress: payload as PullProgress });
      else if (event === 'done') {
        const { image, deduped } = payload as { image?: Image; deduped?: boolean };
        const text = deduped ? t('images.deduped', current.image) : t('images.pulled', current.image, money(image?.charged ?? 0));
        update({ ...current, outcome: { ok: true, text } });
        onDone();
      } else if (event === 'error') {
        const { message } = payload as { message?: string };
        update({ ...current, outcome: { ok: false, text: t('images.failed', current.image, message ?? t('error.generic')) } });
      }
    }).then(
      () => {
        if (!current.outcome) update({ ...current, outcome: { ok: false, text: t('images.failed', current.image, t('error.generic')) } });
      },
      (error: unknown) => {
        if (controller.signal.aborted) return;
        update({ ...current, outcome: { ok: false, text: t('images.failed', current.image, errorText(error)) } });
      },
    );
    return () => controller.abort();
    // The stream is opened once per pull; the callbacks it uses are read from its closure.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [pull.pullId, finished]);

  const progress = pull.progress;
  const layers = Object.entries(progress?.layers ?? {});
  return (
    <div className="pull" aria-live="off">
      <p>
        <strong>{t('images.pulling', pull.image)}</strong>
      </p>
      {!finished || progress ? (
        <div className="progress-row">
          <label>
            <span>{t('images.total')}</span>
            <progress
              max={100}
              value={progress?.percent ?? (finished ? 100 : undefined)}
              aria-valuetext={progress ? `${progress.percent}% · ${bytes(progress.bytesDone)} / ${bytes(progress.bytesTotal)}` : undefined}
            />
          </label>
          <span className="muted">
            {progress ? `${progress.percent}% · ${bytes(progress.bytesDone)} / ${bytes(progress.bytesTotal)}` : t('app.loading')}
          </span>
        </div>
      ) : null}
      {!finished && layers.length > 0 ? (
        <ul className="layers">
          {layers.map(([id, layer]) => (
            <li key={id}>
              <label>
                <span>{t('images.layer', id.slice(0, 12), layer.status)}</span>
                <progress
                  max={layer.total || 1}
                  value={layer.total ? layer.current : layer.status.startsWith('Pull complete') || layer.status.startsWith('Already') ? 1 : 0}
                />
              </label>
            </li>
          ))}
        </ul>
      ) : null}
      {pull.outcome ? pull.outcome.ok ? <Notice>{pull.outcome.text}</Notice> : <ErrorAlert error={pull.outcome.text} /> : null}
      {finished ? (
        <button type="button" className="link-button" onClick={onDismiss}>
          {t('images.dismiss')}
        </button>
      ) : null}
    </div>
  );
}

function ImageRow({
  image,
  canDelete,
  isAdmin,
  onDelete,
  onPublished,
  format,
}: {
  image: Image;
  canDelete: boolean;
  isAdmin: boolean;
  onDelete: () => void;
  onPublished: () => void;
  format: { money: (n: number) => string; date: (s: string) => string; bytes: (n: number) => string };
}) {
  const { t } = useI18n();
  return (
    <tr>
      <td className="wrap">{image.reference}</td>
      <td>{image.host}</td>
      <td className="num">{format.bytes(image.sizeBytes)}</td>
      <td className="num">{format.money(image.charged)}</td>
      <td>{image.visibility === 'public' ? t('images.public') : t('images.private')}</td>
      <td>{format.date(String(image.createdAt))}</td>
      <td>
        <div className="actions">
          <button type="button" onClick={() => navigate(`/containers?image=${encodeURIComponent(image.id)}`)}>
            {t('images.run')}
          </button>
          {canDelete ? (
            <button type="button" className="danger" onClick={onDelete}>
              {t('images.delete')}
            </button>
          ) : null}
          {isAdmin && image.visibility === 'private' ? (
            <ActionButton
              label={t('images.publish')}
              run={async () => {
                await unwrap(api.POST('/api/v1/images/{id}/publish', { params: { path: { id: image.id } } }));
                onPublished();
              }}
            />
          ) : null}
        </div>
      </td>
    </tr>
  );
}

function DeleteDialog({ image, onClose }: { image: Image; onClose: (message?: string) => void }) {
  const { t, money } = useI18n();
  const action = useAction();
  return (
    <Dialog
      title={t('images.confirmDelete', image.reference)}
      submitLabel={t('images.delete')}
      danger
      busy={action.busy}
      error={action.error}
      onSubmit={() =>
        void action.run(async () => {
          const removed = await unwrap(api.DELETE('/api/v1/images/{id}', { params: { path: { id: image.id } } }));
          onClose(t('images.deleted', image.reference, money(removed.refunded)));
        })
      }
      onCancel={() => onClose()}
    >
      <p>{t('images.refundNote', money(image.charged))}</p>
    </Dialog>
  );
}
