/** A container's "Start", "Stop", "Restart" and "Remove" (after a confirmation), each enabled when its state allows it. */
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import type { Container } from '../api/types';
import { useI18n } from '../i18n';
import { useAction } from '../lib/hooks';
import { allows, type Operation } from '../lib/containers';
import { Dialog, ErrorAlert } from './ui';

const OPERATIONS = [
  ['start', 'containers.start'],
  ['stop', 'containers.stop'],
  ['restart', 'containers.restart'],
] as const satisfies readonly (readonly [Operation, string])[];

export function ContainerActions({ container, onChanged }: { container: Container; onChanged: (message?: string) => void }) {
  const { t } = useI18n();
  const action = useAction();
  const removal = useAction();
  const [confirming, setConfirming] = useState(false);

  const operate = (operation: Operation) =>
    action.run(async () => {
      await unwrap(api.POST('/api/v1/containers/{id}/{operation}', { params: { path: { id: container.id, operation } } }));
      onChanged();
    });

  const remove = () =>
    removal.run(async () => {
      await unwrap(api.DELETE('/api/v1/containers/{id}', { params: { path: { id: container.id } } }));
      setConfirming(false);
      onChanged(t('containers.removed', container.name));
    });

  return (
    <div className="actions">
      {OPERATIONS.map(([operation, label]) => (
        <button key={operation} type="button" disabled={action.busy || !allows(container, operation)} onClick={() => void operate(operation)}>
          {t(label)}
        </button>
      ))}
      <button type="button" className="danger" disabled={!allows(container, 'remove')} onClick={() => setConfirming(true)}>
        {t('containers.remove')}
      </button>
      <ErrorAlert error={action.error} />
      {confirming ? (
        <Dialog
          title={t('containers.confirmRemove', container.name)}
          submitLabel={t('containers.remove')}
          danger
          busy={removal.busy}
          error={removal.error}
          onSubmit={() => void remove()}
          onCancel={() => setConfirming(false)}
        >
          <p>{t('containers.removeNote')}</p>
        </Dialog>
      ) : null}
    </div>
  );
}
