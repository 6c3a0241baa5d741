/**
 * The DCU (Download-Compress-Upload) state machine: THE one place that says which
 * states exist, which transitions are legal, and what each state shows as progress.
 *
 *   idle → downloading → compressing → uploading → completed
 *     └──────────┴─────────────┴────────────┴──────→ failed
 *
 * Pure and import-free: the workflow, the database activity that persists the
 * transitions, and the API all use it.
 */

export const DCU_STATES = ['idle', 'downloading', 'compressing', 'uploading', 'completed', 'failed'] as const;
export type DcuState = (typeof DCU_STATES)[number];

/** The working states, in order: each is one activity (one phase) of the workflow. */
export const DCU_PHASES = ['downloading', 'compressing', 'uploading'] as const;
export type DcuPhase = (typeof DCU_PHASES)[number];

const NEXT: Readonly<Record<DcuState, readonly DcuState[]>> = Object.freeze({
  idle: ['downloading', 'failed'],
  downloading: ['compressing', 'failed'],
  compressing: ['uploading', 'failed'],
  uploading: ['completed', 'failed'],
  completed: [],
  failed: [],
});

/** Progress as the original service reported it: a fixed value per state. */
export const DCU_PROGRESS: Readonly<Record<DcuState, number>> = Object.freeze({
  idle: 0,
  downloading: 25,
  compressing: 50,
  uploading: 75,
  completed: 100,
  failed: -1,
});

export const DCU_STATE_DISPLAY: Readonly<Record<DcuState, string>> = Object.freeze({
  idle: 'Idle',
  downloading: 'Downloading',
  compressing: 'Compressing',
  uploading: 'Uploading',
  completed: 'Completed',
  failed: 'Failed',
});

/** The same in Simplified Chinese: the original service's texts, what the DCU API shows by default. */
export const DCU_STATE_DISPLAY_ZH: Readonly<Record<DcuState, string>> = Object.freeze({
  idle: '等待中',
  downloading: '下载中',
  compressing: '压缩镜像中',
  uploading: '上传中',
  completed: '已完成',
  failed: '失败',
});

/** The message a cancelled task ends with. */
export const DCU_CANCELLED_MESSAGE = 'cancelled';

export class IllegalDcuTransitionError extends Error {
  constructor(
    readonly from: string,
    readonly to: string,
  ) {
    super(`illegal DCU transition ${from} → ${to}`);
    this.name = 'IllegalDcuTransitionError';
  }
}

export function isDcuState(value: unknown): value is DcuState {
  return typeof value === 'string' && (DCU_STATES as readonly string[]).includes(value);
}

export function isTerminal(state: DcuState): boolean {
  return NEXT[state].length === 0;
}

export function allowedNext(state: DcuState): readonly DcuState[] {
  return NEXT[state];
}

export function canTransition(from: DcuState, to: DcuState): boolean {
  return isDcuState(from) && isDcuState(to) && NEXT[from].includes(to);
}

/** Throws IllegalDcuTransitionError unless `from → to` is one of the transitions above. */
export function assertTransition(from: DcuState, to: DcuState): void {
  if (!canTransition(from, to)) throw new IllegalDcuTransitionError(from, to);
}
