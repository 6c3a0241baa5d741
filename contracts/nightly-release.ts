/**
 * The nightlyRelease workflow's contract: every container (through its own workflow), then every
 * private image (through removeImage, refunding as release_refund), carrying on past failures, and
 * a report. Started by its schedule (RELEASE_SCHEDULE_ID, whose id prefixes each run's workflow id;
 * the run's workflow id is its releaseId) and by tests. Types and constants only: workflows import it.
 */
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { defineWorkflow } from './workflow.js';

/** The schedule the control worker keeps (workers/schedules.ts); admins trigger it (POST /api/v1/admin/releases). */
export const RELEASE_SCHEDULE_ID = 'berth-nightly-release';

/** Something the release removes: a container or an image record, on its host. */
export interface ReleaseItem {
  id: string;
  hostId: string;
  reference?: string;
  /** An image's owner (listed since the release's removals carry search attributes; absent in older results). */
  userId?: string;
  /** A container still being created: removed through its workflow's update, which waits for the creation (batches only). */
  creating?: boolean;
  /** An image whose reference another record outside the batch still uses on its host: Docker keeps it (batches only). */
  keepOnHost?: boolean;
}

/** What a host did with a batch of removals: the refs removed (or absent already), and the ones that failed, with why. */
export interface BatchRemovals {
  done: string[];
  failed: Array<{ ref: string; reason: string }>;
}

/** What the database did with a batch of image removals: the amount refunded per image removed, and the ones it kept, with why. */
export interface ImageBatchResult {
  removed: Array<{ id: string; refunded: number }>;
  failed: Array<{ id: string; reason: string }>;
}

export type ReleasePhase = 'containers' | 'images';

export interface ReleaseFailure {
  phase: ReleasePhase;
  /** The container's or image's id; or what a step on a host was about ("host host-a", "networks on host-a"). */
  id: string;
  hostId: string;
  reason: string;
}

/** A Berth-labelled container without a live record, removed directly from its host. */
export interface ReleaseOrphan {
  /** Its Berth container id (label), or Docker's id when the label is empty. */
  id: string;
  hostId: string;
  dockerId: string;
  /** The owner its label names ('' or absent when none; host workers before this field sent none). */
  userId?: string;
}

export interface ReleaseReport {
  containers: { removed: number; failed: number };
  images: { removed: number; failed: number };
  refundedTotal: number;
  failures: ReleaseFailure[];
  /** The orphans it removed (runs before this field list none), audited with the failures at the end. */
  orphans?: ReleaseOrphan[];
}

export interface NightlyReleaseInput {
  /** Removals in flight per host at most. */
  concurrency: number;
  /** Items listed per batch (default 50). */
  batchSize?: number;
  /** History events after which the run continues as new, between batches (default 4000). */
  historyLimit?: number;
  /** Carried across continue-as-new. */
  carry?: { releaseId: string; phase: ReleasePhase; report: ReleaseReport };
}

export const nightlyReleaseWorkflow = defineWorkflow<[NightlyReleaseInput], ReleaseReport>('nightlyRelease', CONTROL_TASK_QUEUE);
