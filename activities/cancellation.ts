/** The error a cancelled activity ends with. */
import { CancelledFailure, type Context } from '@temporalio/activity';

/** The cancellation error to throw once the activity's cancellationSignal fired. */
export function cancellation(ctx: Context): Error {
  const reason: unknown = ctx.cancellationSignal.reason;
  return reason instanceof CancelledFailure ? reason : new CancelledFailure('cancelled');
}
