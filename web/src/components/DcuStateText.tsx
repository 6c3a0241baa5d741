/** A DCU task's state in the console's language (every state named: a new one fails tsc). */
import type { DcuState, DcuTask } from '../api/types';
import { useI18n } from '../i18n';
import type { TextKey } from '../i18n/en';

export const DCU_STATE_KEYS: Record<DcuState, TextKey> = {
  idle: 'dcu.state.idle',
  downloading: 'dcu.state.downloading',
  compressing: 'dcu.state.compressing',
  uploading: 'dcu.state.uploading',
  completed: 'dcu.state.completed',
  failed: 'dcu.state.failed',
};

export const DCU_RUNNING: readonly DcuState[] = ['idle', 'downloading', 'compressing', 'uploading'];

/** The DCU API's times are "YYYY-MM-DD HH:mm:ss" in UTC (the original's format), empty when unset. */
export const dcuTime = (value: string): string | null => (value ? `${value.replace(' ', 'T')}Z` : null);

export function DcuStateText({ task }: { task: DcuTask }) {
  const { t } = useI18n();
  return <span className={`state state-${task.state}`}>{t(DCU_STATE_KEYS[task.state])}</span>;
}
