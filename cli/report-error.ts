import { CommanderError } from 'commander';
import { ApiError, NotADaemonError, UnreachableError } from './api-client.ts';
import { exitCodes } from './exit-codes.ts';
import { FollowStopped } from './follow-task.ts';
import type { Output } from './task-printer.ts';

/** What a command that threw tells the user (one message, never a stack trace), and the exit code it means. */
export function reportError(error: unknown, output: Output): number {
  if (error instanceof CommanderError) {
    // commander has printed its message already.
    return error.exitCode === 0 ? exitCodes.success : exitCodes.rejected;
  }
  if (error instanceof FollowStopped) {
    // The follower has said what happened and how to go on.
    return error.exitCode;
  }
  if (error instanceof ApiError) {
    output.err(`error: ${headline(error)}`);
    for (const detail of error.details) output.err(`  ${detail.path}: ${detail.message}`);
    return error.status >= 500 ? exitCodes.error : exitCodes.rejected;
  }
  if (error instanceof UnreachableError || error instanceof NotADaemonError) {
    output.err(`error: ${error.message}`);
    return exitCodes.unreachable;
  }
  output.err(`error: ${(error as Error).message}`);
  return exitCodes.rejected;
}

/**
 * The daemon's message repeats its details on one line (`composition has 2 problems: a: …; b: …`) for
 * clients that show only the message; the details are printed one per line below it, so the headline stops
 * where the first of them begins.
 */
function headline(error: ApiError): string {
  const first = error.details[0];
  if (first === undefined) return error.message;
  const at = error.message.indexOf(`: ${first.path}: `);
  const head = at === -1 ? error.message : error.message.slice(0, at);
  return head.endsWith(':') ? head : `${head}:`;
}
