/**
 * A task as a Markdown summary, for a CI job's summary page (`$GITHUB_STEP_SUMMARY`): the outcome, a table
 * of runs and groups, and the first failed instances with their reasons.
 */
import type { TaskReport } from '../../api/schemas.ts';

const shownFailures = 10;

export function formatMarkdown(report: TaskReport): string {
  const lines = [
    `### Testground ${report.plan}/${report.testCase}: ${outcomeMark(report.outcome)} ${report.outcome ?? 'pending'}`,
    '',
    `Task \`${report.taskId}\` on \`${report.runner}\`${report.error ? `: ${escapeCell(report.error)}` : ''}`,
    '',
    '| run | group | ok | outcome |',
    '|---|---|---|---|',
  ];
  for (const run of report.runs) {
    for (const group of run.groups) {
      lines.push(
        `| ${escapeCell(run.name)} | ${escapeCell(group.id)} | ${group.ok}/${group.total} | ${outcomeMark(run.outcome)} ${run.outcome ?? 'pending'} |`,
      );
    }
  }
  const failed = report.runs.flatMap((run) => run.failed.map((instance) => ({ run, instance })));
  if (failed.length > 0) {
    lines.push('', `Instances that did not succeed (${failed.length}):`, '');
    for (const { run, instance } of failed.slice(0, shownFailures)) {
      lines.push(
        `- \`${run.name}\` ${instance.group}[${instance.index}] ${instance.outcome}: ${escapeCell(instance.reason)}`,
      );
    }
    if (failed.length > shownFailures) lines.push(`- … and ${failed.length - shownFailures} more`);
  }
  return `${lines.join('\n')}\n`;
}

function outcomeMark(outcome: string | undefined): string {
  return outcome === 'success' ? '✅' : outcome === 'canceled' || outcome === undefined ? '⚪' : '❌';
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}
