/**
 * The shape every workflow contract shares: the workflow's type name and the task queue it runs
 * on, typed by the workflow's signature so that a start with the wrong arguments does not
 * compile. Each workflow has one contract module here (contracts/<workflow>.ts) holding its
 * input, result, signals, updates, queries, id builder and this descriptor; the workflow, the
 * services and the tests import it. Only @temporalio/workflow's definitions: workflows may use it.
 */
export interface WorkflowContract<Args extends unknown[], Result> {
  /** The workflow type, as the worker registers it and operators type it into the CLI. */
  readonly type: string;
  readonly taskQueue: string;
  /**
   * Never set: carries the signature for type inference only. A method (its parameters are
   * compared bivariantly), so that every contract is a WorkflowContract<unknown[], unknown>.
   */
  signature?(...args: Args): Promise<Result>;
}

export type ContractArgs<C> = C extends WorkflowContract<infer A, unknown> ? A : never;
export type ContractResult<C> = C extends WorkflowContract<unknown[], infer R> ? R : never;

export function defineWorkflow<Args extends unknown[], Result>(type: string, taskQueue: string): WorkflowContract<Args, Result> {
  return { type, taskQueue };
}
