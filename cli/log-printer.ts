import { describeEvent, parseEventLine } from '../core/contract/events.ts';
import type { LogLine } from '../api/schemas.ts';
import { briefError } from './task-printer.ts';
import { formatProgressLine } from './progress-view.ts';

/** One task log line as a person reads it; instance events are shown by their meaning, not as JSON. */
export function formatLogLine(line: LogLine): string {
  const time = typeof line.ts === 'string' ? line.ts.slice(11, 23) : '';
  switch (line.kind) {
    case 'log':
      return `${time} ${String(line.level).toUpperCase().padEnd(5)} ${String(line.msg)}`;
    case 'state':
      return `${time} task ${String(line.state)}`;
    case 'output': {
      const who = `${String(line.group)}[${String(line.instance)}]`;
      const text = String(line.line);
      return `${time} ${who} ${line.stream === 'stderr' ? '(stderr) ' : ''}${describeLine(text) ?? text}`;
    }
    case 'instance_end':
      return `${time} ${String(line.group)}[${String(line.instance)}] ended: ${String(line.outcome)} (${String(line.reason)})`;
    case 'progress':
      return `${time} progress of run ${line.run}: ${formatProgressLine(line)}`;
    case 'end':
      // The log showed the error in full where it happened; a long one is not repeated at the end.
      return `${time} task ${String(line.state)}: ${String(line.outcome ?? '')}${line.error ? ` (${String(briefError(String(line.error)))})` : ''}`;
    default:
      return `${time} ${JSON.stringify(line)}`;
  }
}

function describeLine(text: string): string | undefined {
  const event = parseEventLine(text);
  return event === undefined ? undefined : describeEvent(event);
}
