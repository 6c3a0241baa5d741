/** A container's state in the console's language (a state the console does not know is shown as the API names it). */
import type { Container } from '../api/types';
import { useI18n } from '../i18n';
import type { TextKey } from '../i18n/en';

const KEYS: Record<string, TextKey> = {
  creating: 'container.state.creating',
  running: 'container.state.running',
  stopped: 'container.state.stopped',
  suspended: 'container.state.suspended',
  exited: 'container.state.exited',
  removed: 'container.state.removed',
  failed: 'container.state.failed',
};

export function ContainerState({ container }: { container: Pick<Container, 'state'> }) {
  const { t } = useI18n();
  const key = KEYS[container.state];
  return <span className={`state state-${container.state}`}>{key ? t(key) : container.state}</span>;
}
