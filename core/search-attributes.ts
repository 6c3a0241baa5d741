/**
 * Berth's custom search attributes: every workflow Berth starts carries those that apply to it, so
 * that operators find a user's, a host's or a resource's workflows in the CLI
 * (`temporal workflow list --query 'BerthUserId="<id>"'`) and the Web UI's filter.
 *
 *   BerthUserId      the user whose things the workflow works on (pulls, containers, DCU tasks, image removals)
 *   BerthHostId      the Docker host it works on
 *   BerthResourceId  the resource: the container id, the DCU task id, the image id (removal), the pull id (pull)
 *
 * The scheduled sweeps (nightly release, DCU cleanups, audit retention) belong to no user and no
 * one host: they carry none (find them with `TemporalScheduledById="<schedule id>"`).
 *
 * The server must know them before any workflow is started with them (a start naming an unknown
 * attribute is refused): scripts/stack.sh, scripts/cluster-temporal.sh and
 * docker/temporal/create-namespace.sh register SEARCH_ATTRIBUTE_NAMES (Keyword), and
 * test/unit/search-attributes.test.ts checks that each names all of them.
 *
 * Only @temporalio/common: workflow code may use it.
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';

export const BerthUserId = defineSearchAttributeKey('BerthUserId', SearchAttributeType.KEYWORD);
export const BerthHostId = defineSearchAttributeKey('BerthHostId', SearchAttributeType.KEYWORD);
export const BerthResourceId = defineSearchAttributeKey('BerthResourceId', SearchAttributeType.KEYWORD);

/** Every one of them, by name: what the stack registers, all of type Keyword. */
export const SEARCH_ATTRIBUTE_NAMES: readonly string[] = [BerthUserId.name, BerthHostId.name, BerthResourceId.name];

/** What a workflow is about; a field absent (or null: a system action) is not set. */
export interface WorkflowSubject {
  userId?: string | null;
  hostId?: string | null;
  resourceId?: string | null;
}

/** The typed search attributes for a workflow about `subject` (start, child start). */
export function searchAttributesFor(subject: WorkflowSubject): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [];
  if (subject.userId) pairs.push({ key: BerthUserId, value: subject.userId });
  if (subject.hostId) pairs.push({ key: BerthHostId, value: subject.hostId });
  if (subject.resourceId) pairs.push({ key: BerthResourceId, value: subject.resourceId });
  return pairs;
}
