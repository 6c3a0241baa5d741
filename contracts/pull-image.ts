/**
 * The pullImage workflow's contract: pull an image onto a host and pay for it by size. Its input
 * (fixed by the API: the reference, normalized, and the price), its result, the pull id (which is
 * the workflow id) and the descriptor services and tests start it with. Types and pure functions
 * only: the workflow imports it.
 */
import type { PullSnapshot } from '../core/pull-progress.js';
import { CONTROL_TASK_QUEUE } from '../core/temporal-names.js';
import { defineWorkflow } from './workflow.js';

/** An image as the API and workflow results show it (JSON-safe). */
export interface ImageView {
  id: string;
  userId: string;
  reference: string;
  repository: string;
  tag: string | null;
  digest: string | null;
  imageId: string;
  sizeBytes: number;
  sizeMb: number;
  host: string;
  ports: string[];
  visibility: 'private' | 'public';
  charged: number;
  pullId: string | null;
  createdAt: string;
}

/** What a pull is asked to do, recorded with the image. */
export interface PullImageInput {
  /** The workflow id too: pullId(uuid). */
  pullId: string;
  userId: string;
  hostId: string;
  /** Normalized by core/image-ref before the workflow starts. */
  reference: string;
  repository: string;
  tag: string | null;
  digest: string | null;
  /**
   * Minor units per started MB, read by the API from its configuration when the pull starts: the
   * pull keeps the price it started with. Absent in pulls started before the API fixed the price;
   * those are charged at the control worker's configured price.
   */
  pricePerMb?: number;
}

export interface PullImageResult {
  image: ImageView;
  /** The user owned this reference on this host already: nothing was pulled or charged. */
  deduped: boolean;
  /** A Docker pull ran (false when the image was already on the host). */
  pulled: boolean;
  /** The pull's final progress, when one ran. */
  progress: PullSnapshot | null;
}

/** A pull's id, which is its workflow's id: "pull-<uuid>". */
export const pullId = (uuid: string) => `pull-${uuid}`;

/** What pullId() makes (a lowercase UUID after "pull-"). */
export const PULL_ID = /^pull-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The host activities that run the Docker pull, by the names they have had: the workflow schedules
 * `ensure` (inspect, pull when missing, inspect: PATCHES.pullFewerRoundTrips); runs started before
 * schedule `current` (PATCHES.pullDockerPullActivity) or, before that, `legacy`, which the host
 * worker keeps registered as an alias (the DCU workflow still calls it too). A pull's progress is
 * the heartbeat of whichever of them is pending.
 */
export const PULL_ACTIVITY = { ensure: 'ensureImage', current: 'dockerPull', legacy: 'pullImage' } as const;
export const PULL_ACTIVITY_NAMES: readonly string[] = [PULL_ACTIVITY.ensure, PULL_ACTIVITY.current, PULL_ACTIVITY.legacy];

export const pullImageWorkflow = defineWorkflow<[PullImageInput], PullImageResult>('pullImage', CONTROL_TASK_QUEUE);
