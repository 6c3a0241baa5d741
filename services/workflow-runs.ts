/**
 * The one way the API starts a workflow and, for `?wait=true`, waits for it: up to
 * BERTH_WAIT_TIMEOUT, then 504 with where to follow it; a failure becomes the problem its type
 * says (services/workflow-failures.ts). Every route that starts a workflow goes through a service
 * that uses this; routes never see the Temporal client.
 */
import {
  WithStartWorkflowOperation,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type Client,
  type WorkflowClient,
  type WorkflowHandle,
  type WorkflowStartOptions,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Duration, Workflow } from '@temporalio/common';
import { gatewayTimeout, unavailable } from '../core/errors.js';
import { rootCause } from '../core/failures.js';
import { searchAttributesFor, type WorkflowSubject } from '../core/search-attributes.js';
import type { ContractArgs, ContractResult, WorkflowContract } from '../contracts/workflow.js';
import { problemForWorkflowFailure } from './workflow-failures.js';
import { resolveStart, START_RESOLUTION, type StartResolutionPolicy } from './workflow-start-outcome.js';

export interface StartOptions<C extends WorkflowContract<unknown[], unknown>> {
  workflowId: string;
  args: ContractArgs<C>;
  /**
   * The user, host and resource the run is about: its search attributes (core/search-attributes.ts),
   * which operators list a user's or a host's workflows by. Required, so that no start forgets them.
   */
  subject: WorkflowSubject;
  /** Who the run belongs to, and anything the API reads back without a query. */
  memo?: Record<string, unknown>;
  /** The most the whole run may take (a ping's 30s), else unbounded. */
  workflowExecutionTimeout?: Duration;
}

export interface WaitOptions {
  /** Where the caller can follow the run after a 504 (a URL path), said in the problem's detail. */
  followAt: string;
  /** What is still running, in the 504's detail ("The pull is still running; ..."); default "workflow". */
  what?: string;
}

/**
 * Whether a start's 503 left it unknown whether the run was started (it may exist, or appear
 * later), rather than refused: what the caller reserved for the run may then be in use by it.
 */
export const startOutcomeUnknown = (error: unknown): boolean => (error as { startOutcome?: unknown } | null)?.startOutcome === 'unknown';

/** What of the client this module uses: starts, update-with-start, handles and deadlines (unit tests fake it). */
export interface WorkflowStarter {
  workflow: Pick<WorkflowClient, 'start' | 'executeUpdateWithStart' | 'startUpdateWithStart' | 'getHandle'>;
  withDeadline: Client['withDeadline'];
}

/** What became of an update-with-start (see startWithUpdate). */
export type UpdateWithStartResult<R> = { started: true; result: R } | { started: true; error: unknown } | { started: false; error: unknown };

/** Whether the client saw the start of an update-with-start decided (the run started); false when the call never got that far. */
function startDecided(op: WithStartWorkflowOperation<Workflow>): Promise<boolean> {
  // The client settles the operation's handle before the call's own promise; a call that failed
  // before it sent anything settles nothing, hence the race with the next turn.
  return Promise.race([
    op.workflowHandle().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 0)),
  ]);
}

export function createWorkflowRuns(deps: { temporal: WorkflowStarter; waitTimeoutMs: number; resolution?: StartResolutionPolicy }) {
  const { temporal, waitTimeoutMs, resolution = START_RESOLUTION } = deps;

  /** The options of a start, as the client takes them (search attributes from the subject). */
  function startOptions<C extends WorkflowContract<unknown[], unknown>>(contract: C, options: StartOptions<C>): WorkflowStartOptions {
    return {
      taskQueue: contract.taskQueue,
      workflowId: options.workflowId,
      args: options.args as unknown[],
      typedSearchAttributes: searchAttributesFor(options.subject),
      ...(options.memo ? { memo: options.memo } : {}),
      ...(options.workflowExecutionTimeout ? { workflowExecutionTimeout: options.workflowExecutionTimeout } : {}),
    };
  }

  /**
   * The 503 of a start that started nothing (`refused`) or whose outcome is still unknown after
   * every attempt (`unknown`: the run may exist, or appear later; the caller releases what it
   * reserved only where the run cannot have taken it, and a run that lands late finds it released).
   */
  const startFailure = (outcome: { kind: 'refused' | 'unknown'; error: unknown }) =>
    Object.assign(
      unavailable(
        outcome.kind === 'refused'
          ? `The work could not be started; try again shortly (${rootCause(outcome.error).message}).`
          : `The work could not be confirmed started; try again shortly (${rootCause(outcome.error).message}).`,
      ),
      { cause: outcome.error, startOutcome: outcome.kind },
    );

  /** A further attempt of an ambiguous start: bounded by its own deadline. */
  const further = <T>(fn: () => Promise<T>) => temporal.withDeadline(Date.now() + resolution.attemptTimeoutMs, fn);

  /**
   * Starts a run. A run of that id that exists already is the caller's to handle
   * (WorkflowExecutionAlreadyStartedError); Temporal refusing or unreachable is 503: the
   * request was right, the service cannot take work now. A failure that leaves it unknown whether
   * the server started the run (a deadline, a cut connection) is resolved first by starting again
   * with the same id (services/workflow-start-outcome.ts): "already started" then means this
   * request's run, which is answered as started. Further attempts reject a closed run of that
   * id rather than start another (REJECT_DUPLICATE): a run that started and ended at once is
   * still this request's.
   */
  async function start<C extends WorkflowContract<unknown[], unknown>>(contract: C, options: StartOptions<C>): Promise<WorkflowHandle<Workflow>> {
    const base = startOptions(contract, options);
    const outcome = await resolveStart(
      (n) =>
        n === 0
          ? temporal.workflow.start(contract.type, base)
          : further(() => temporal.workflow.start(contract.type, { ...base, workflowIdReusePolicy: 'REJECT_DUPLICATE' })),
      resolution,
    );
    switch (outcome.kind) {
      case 'started':
        return outcome.value;
      case 'startedEarlier':
        return temporal.workflow.getHandle(options.workflowId);
      case 'exists':
        throw outcome.error;
      default:
        throw startFailure(outcome);
    }
  }

  /**
   * Starts a run and sends it an update in the same call (Temporal's update-with-start: one
   * request, the update handled in the run's first workflow task), then waits for the update's
   * result. The update has a fixed id (`updateId`), so that Temporal answers a repeated update of
   * the same run with the first one's outcome.
   *
   * The first attempt refuses an existing run (conflict policy FAIL). When it fails without the
   * start being decided and the failure is ambiguous, further attempts use the existing run
   * (USE_EXISTING, REJECT_DUPLICATE for a closed one) and wait only for the update's acceptance
   * within their deadline, then for its result. When the start was decided but the update's call
   * failed, the update is asked again on the run, with the same id.
   *
   * Answers `started: true` with the update's result or its failure (the client's
   * WorkflowUpdateFailedError, or why it could not be followed), or `started: false` with
   * WorkflowExecutionAlreadyStartedError (a run of that id existed before) or the 503 of a start
   * that was refused or whose outcome stayed unknown.
   */
  async function startWithUpdate<C extends WorkflowContract<unknown[], unknown>, R>(
    contract: C,
    options: StartOptions<C>,
    updateDef: UpdateDefinition<R, []>,
    updateId: string,
  ): Promise<UpdateWithStartResult<R>> {
    const base = startOptions(contract, options);
    const operation = (n: number) =>
      new WithStartWorkflowOperation(
        contract.type,
        n === 0 ? { ...base, workflowIdConflictPolicy: 'FAIL' } : { ...base, workflowIdConflictPolicy: 'USE_EXISTING', workflowIdReusePolicy: 'REJECT_DUPLICATE' },
      );
    type Attempt = { ok: true; result: () => Promise<R> } | { ok: false; error: unknown };
    // A call whose start was decided started the run, whatever became of the update in it.
    const decidedOrThrow = async (op: WithStartWorkflowOperation<Workflow>, error: unknown): Promise<Attempt> => {
      if (await startDecided(op)) return { ok: false, error };
      throw error;
    };
    const outcome = await resolveStart<Attempt>(async (n) => {
      const op = operation(n);
      if (n === 0) {
        return temporal.workflow.executeUpdateWithStart(updateDef, { startWorkflowOperation: op, updateId }).then(
          (result): Attempt => ({ ok: true, result: () => Promise.resolve(result) }),
          (error: unknown) => decidedOrThrow(op, error),
        );
      }
      return further(() =>
        temporal.workflow.startUpdateWithStart(updateDef, { startWorkflowOperation: op, updateId, waitForStage: WorkflowUpdateStage.ACCEPTED }),
      ).then(
        (handle): Attempt => ({ ok: true, result: () => handle.result() }),
        (error: unknown) => decidedOrThrow(op, error),
      );
    }, resolution);

    switch (outcome.kind) {
      case 'started': {
        const attempt = outcome.value;
        if (!attempt.ok) return { started: true, ...(await followUpdate(options.workflowId, updateDef, updateId, attempt.error)) };
        try {
          return { started: true, result: await attempt.result() };
        } catch (error) {
          return { started: true, error };
        }
      }
      case 'startedEarlier':
        // The run this request started is closed already: its update can no longer be asked.
        return { started: true, error: outcome.error };
      case 'exists':
        return { started: false, error: outcome.error };
      default:
        return { started: false, error: startFailure(outcome) };
    }
  }

  /**
   * The update of a run that exists, after its update-with-start's call failed: the update's own
   * failure as it is, else the update asked again on the run with the same id (Temporal answers
   * the first one's outcome when it was admitted).
   */
  async function followUpdate<R>(workflowId: string, updateDef: UpdateDefinition<R, []>, updateId: string, error: unknown): Promise<{ result: R } | { error: unknown }> {
    if (error instanceof WorkflowUpdateFailedError) return { error };
    try {
      return { result: await temporal.workflow.getHandle(workflowId).executeUpdate(updateDef, { updateId }) };
    } catch (again) {
      return { error: again };
    }
  }

  /**
   * The run's result, or: 504 once BERTH_WAIT_TIMEOUT has passed (the run goes on), the problem
   * of its failure. `onSettled` runs when the run has ended, either way (not on the timeout).
   */
  async function wait<C extends WorkflowContract<unknown[], unknown>>(
    _contract: C,
    workflowId: string,
    options: WaitOptions & { onSettled?: () => Promise<unknown> },
  ): Promise<ContractResult<C>> {
    const handle = temporal.workflow.getHandle(workflowId);
    let timer: NodeJS.Timeout | undefined;
    const settled = handle.result().finally(() => options.onSettled?.());
    try {
      return (await Promise.race([
        settled,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(gatewayTimeout(`The ${options.what ?? 'workflow'} is still running; follow it at ${options.followAt}.`)), waitTimeoutMs);
        }),
      ])) as ContractResult<C>;
    } catch (error) {
      if (error instanceof WorkflowFailedError) throw problemForWorkflowFailure(error);
      throw error;
    } finally {
      clearTimeout(timer);
      // The run may still end after a timeout: its settlement is handled, never unhandled.
      settled.catch(() => undefined);
    }
  }

  return {
    start,
    startWithUpdate,
    wait,
  };
}

export type WorkflowRuns = ReturnType<typeof createWorkflowRuns>;
