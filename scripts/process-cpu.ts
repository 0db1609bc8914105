import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc reports CPU times in these ticks. */
const clockTicksPerSecond = 100;

/**
 * Milliseconds of CPU (user + system, all threads) process `pid` has used so far, from `/proc/<pid>/stat`.
 * With `children`, also what the children it has waited for used (cutime + cstime): the Docker engine's
 * helper processes are such children.
 */
export function processCpuMs(pid: number, options: { children?: boolean } = {}): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself hold spaces and parentheses: utime is the 14th field.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const indexes = options.children ? [11, 12, 13, 14] : [11, 12];
  const ticks = indexes.reduce((sum, index) => sum + Number(fields[index] ?? 0), 0);
  return (ticks * 1_000) / clockTicksPerSecond;
}
