/**
 * The one way the API starts a workflow and, for `?wait=true`, waits for it: up to
 * BERTH_WAIT_TIMEOUT, then 504 with where to follow it; a failure becomes the problem its type
 * says (services/workflow-failures.ts). Every route that starts a workflow goes through a service
 * that uses this; routes never see the Temporal client.
 */
import { WithStartWorkflowOperation, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type WorkflowHandle, type WorkflowStartOptions } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Duration, Workflow } from '@temporalio/common';
import { gatewayTimeout, unavailable } from '../core/errors.js';
import { rootCause } from '../core/failures.js';
import { searchAttributesFor, type WorkflowSubject } from '../core/search-attributes.js';
import type { ContractArgs, ContractResult, WorkflowContract } from '../contracts/workflow.js';
import { problemForWorkflowFailure } from './workflow-failures.js';

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

export function createWorkflowRuns(deps: { temporal: Client; waitTimeoutMs: number }) {
  const { temporal, waitTimeoutMs } = deps;

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

  const startFailure = (error: unknown) =>
    error instanceof WorkflowExecutionAlreadyStartedError
      ? error
      : Object.assign(unavailable(`The work could not be started; try again shortly (${rootCause(error).message}).`), { cause: error });

  /**
   * Starts a run. A run of that id that exists already is the caller's to handle
   * (WorkflowExecutionAlreadyStartedError); Temporal refusing or unreachable is 503: the
   * request was right, the service cannot take work now.
   */
  async function start<C extends WorkflowContract<unknown[], unknown>>(contract: C, options: StartOptions<C>): Promise<WorkflowHandle<Workflow>> {
    try {
      return await temporal.workflow.start(contract.type, startOptions(contract, options));
    } catch (error) {
      throw startFailure(error);
    }
  }

  /**
   * Starts a run and sends it an update in the same call (Temporal's update-with-start: one
   * request, the update handled in the run's first workflow task), then waits for the update's
   * result. `started` settles once the start is decided: false when the run could not be started,
   * and `update` then rejects as start() would (WorkflowExecutionAlreadyStartedError, else 503).
   * An update that fails in a run that started rejects with the client's WorkflowUpdateFailedError.
   */
  function startWithUpdate<C extends WorkflowContract<unknown[], unknown>, R>(
    contract: C,
    options: StartOptions<C>,
    updateDef: UpdateDefinition<R, []>,
  ): { started: Promise<boolean>; update: Promise<R> } {
    const operation = new WithStartWorkflowOperation(contract.type, { ...startOptions(contract, options), workflowIdConflictPolicy: 'FAIL' });
    const decided = operation.workflowHandle().then(
      () => true,
      () => false,
    );
    const update = temporal.workflow.executeUpdateWithStart(updateDef, { startWorkflowOperation: operation });
    // The client decides the start before the update's call settles; a call that failed before it
    // sent anything decides nothing, and started nothing.
    const started = update.then(
      () => true,
      () => Promise.race([decided, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 0))]),
    );
    return {
      started,
      update: update.catch(async (error: unknown) => {
        throw (await started) ? error : startFailure(error);
      }),
    };
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
