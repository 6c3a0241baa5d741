/**
 * Berth's metrics, every one defined here (README, Operating Berth: Metrics): the one registry of
 * a process (the API, the control worker, a host worker), its default process metrics under their
 * standard names (`process_*`, `nodejs_*`), and the domain metrics, recorded where their event
 * happens (a service, an activity, the ledger, a workflow's end through its worker's sink).
 * Prometheus sums each counter over the processes. The counters' bounded label values start at 0,
 * so that rate() and ratios see a series before its first event.
 *
 * What is computed on scrape from PostgreSQL and Temporal (hosts up, containers by state, the
 * schedules) is the API's own (api/plugins/metrics.ts); the HTTP metrics too. A worker's Temporal
 * SDK metrics come from the SDK's own exporter, relayed by its ops server (workers/ops-server.ts).
 *
 * Not for workflow code (prom-client cannot run in the sandbox; lint refuses it there).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The process's registry: default process metrics (once collectProcessMetrics ran) and the domain metrics below. */
export const metricsRegistry = new Registry();

let collecting = false;
/** Starts collecting prom-client's default process metrics (standard names, no prefix) into the registry; once per process. */
export function collectProcessMetrics(): void {
  if (collecting) return;
  collecting = true;
  collectDefaultMetrics({ register: metricsRegistry });
}

const registers = [metricsRegistry];
/** A counter in the process's registry. */
const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new Counter({ name, help, labelNames, registers });
/** A histogram in the process's registry. */
const histogram = <L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []) =>
  new Histogram({ name, help, buckets, labelNames, registers });

// ---------------------------------------------------------------- limits (API)

/**
 * The limits a request can be refused by, as `berth_requests_limited_total{limit}` names them:
 * the per-user (or per-address) request rate limiter, the login throttle, and each admission limit.
 */
export const LIMITS = {
  /** @fastify/rate-limit's 429 on mutating routes (BERTH_RATE_LIMIT_MAX per BERTH_RATE_LIMIT_WINDOW). */
  rateLimit: 'rate_limit',
  /** Login's 429 after too many failures per username or address (BERTH_LOGIN_MAX_FAILURES_*). */
  loginThrottle: 'login_throttle',
  /** A pull beyond BERTH_MAX_PULLS_PER_USER in flight (429). */
  pullConcurrency: 'pull_concurrency',
  /** A log follow or stats socket beyond BERTH_MAX_STREAMS_PER_USER (429, or close code 4429). */
  streamLimit: 'stream_limit',
  /** A DCU task beyond BERTH_DCU_MAX_IN_FLIGHT (429). */
  dcuInFlight: 'dcu_in_flight',
  /** A DCU task beyond BERTH_DCU_QUOTA_MB of stored archives (409). */
  dcuQuota: 'dcu_quota',
  /** A container beyond BERTH_MAX_CONTAINERS_PER_USER live ones (409). */
  containerQuota: 'container_quota',
} as const;
export type Limit = (typeof LIMITS)[keyof typeof LIMITS];

const requestsLimited = counter('berth_requests_limited_total', 'Requests refused by a limit (rate limit, login throttle, admission limits), by limit', ['limit']);

for (const limit of Object.values(LIMITS)) requestsLimited.inc({ limit }, 0);

/** A request refused by `limit`. */
export function countLimited(limit: Limit): void {
  requestsLimited.inc({ limit });
}

// ---------------------------------------------------------------- pulls (control worker; the API for the dedups it answers itself)

export const PULL_OUTCOMES = ['deduped', 'present', 'pulled', 'failed'] as const;
export type PullOutcome = (typeof PULL_OUTCOMES)[number];

const pulls = counter('berth_pulls_total', 'Image pulls by outcome: deduped (the user had it), present (on the host already), pulled (downloaded), failed (by reason)', ['outcome', 'reason']);
const pullDuration = histogram(
  'berth_pull_duration_seconds', "Image pulls' duration, from the workflow's start to its outcome (a dedup the API answers itself: the API's answer)", [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900], ['outcome'],
);

for (const outcome of PULL_OUTCOMES) if (outcome !== 'failed') pulls.inc({ outcome, reason: '' }, 0);

/** A pull's end: `reason` only for a failure (a short code, see workflows/metrics-interceptor.ts). */
export function recordPull(outcome: PullOutcome, seconds: number, reason?: string): void {
  pulls.inc({ outcome, reason: outcome === 'failed' ? (reason ?? 'other') : '' });
  pullDuration.observe({ outcome }, seconds);
}

// ---------------------------------------------------------------- DCU (control and host workers)

export const DCU_OUTCOMES = ['succeeded', 'failed', 'cancelled'] as const;
export type DcuOutcome = (typeof DCU_OUTCOMES)[number];
/** The phases of a DCU task as the metrics name them (core/dcu-state.ts's downloading, compressing, uploading). */
export type DcuMetricPhase = 'download' | 'compress' | 'upload';

const dcuTasks = counter('berth_dcu_tasks_total', 'DCU tasks ended, by outcome', ['outcome']);
const dcuPhaseDuration = histogram(
  'berth_dcu_phase_duration_seconds', "Duration of a DCU task's phase activity that succeeded (download: the Docker pull; compress: docker save | gzip; upload: to MinIO)", [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600], ['phase'],
);
const dcuPhaseBytes = counter('berth_dcu_phase_bytes_total', 'Bytes a DCU phase moved or produced (download: pulled; compress: .tar.gz written; upload: sent to MinIO)', ['phase']);

for (const outcome of DCU_OUTCOMES) dcuTasks.inc({ outcome }, 0);

export function recordDcuTask(outcome: DcuOutcome): void {
  dcuTasks.inc({ outcome });
}

/** A DCU phase's activity that succeeded, started at `startedAtMs` (Date.now()): its duration and the bytes it moved or produced. */
export function recordDcuPhase(phase: DcuMetricPhase, startedAtMs: number, bytes: number): void {
  dcuPhaseDuration.observe({ phase }, Math.max(0, Date.now() - startedAtMs) / 1000);
  if (bytes > 0) dcuPhaseBytes.inc({ phase }, bytes);
}

// ---------------------------------------------------------------- money (wherever the ledger is written)

const moneyCharged = counter('berth_money_charged_minor_units_total', 'Money charged, in minor units, by ledger kind (one count per ledger entry written)', ['kind']);
const moneyRefunded = counter('berth_money_refunded_minor_units_total', 'Money refunded, in minor units, by ledger kind (one count per ledger entry written)', ['kind']);
const moneyCredited = counter('berth_money_credited_minor_units_total', "Money credited, in minor units: kind credit (an admin's), opening_balance (at sign-up)", ['kind']);

/**
 * A ledger entry written: `amount` signed as in the ledger (< 0 a charge). `kind` is the ledger's
 * kind, or opening_balance for a sign-up's credit.
 */
export function recordMoney(kind: string, amount: number): void {
  if (amount < 0) moneyCharged.inc({ kind }, -amount);
  else if (kind === 'credit' || kind === 'opening_balance') moneyCredited.inc({ kind }, amount);
  else moneyRefunded.inc({ kind }, amount);
}

// ---------------------------------------------------------------- the nightly release (control worker)

const releaseRuns = counter('berth_release_runs_total', 'Nightly release runs ended, by outcome (completed, failed)', ['outcome']);
const releaseDuration = histogram(
  'berth_release_duration_seconds', "Nightly release runs' duration, from the first run's start to the end of the last (continue-as-new included)", [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400],
);
const releaseItemsRemoved = counter('berth_release_items_removed_total', 'Items the nightly release removed, by kind (container, image)', ['kind']);
const releaseFailures = counter('berth_release_failures_total', 'Items the nightly release could not remove, by kind (container, image)', ['kind']);

for (const outcome of ['completed', 'failed']) releaseRuns.inc({ outcome }, 0);

export interface ReleaseCounts {
  containers: { removed: number; failed: number };
  images: { removed: number; failed: number };
}

/** A nightly release's end: completed with its report's counts, or failed (no report). */
export function recordRelease(outcome: 'completed' | 'failed', seconds: number, counts?: ReleaseCounts): void {
  releaseRuns.inc({ outcome });
  releaseDuration.observe(seconds);
  if (!counts) return;
  for (const [kind, c] of [['container', counts.containers], ['image', counts.images]] as const) {
    if (c.removed > 0) releaseItemsRemoved.inc({ kind }, c.removed);
    if (c.failed > 0) releaseFailures.inc({ kind }, c.failed);
  }
}
