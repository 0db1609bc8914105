/**
 * A task as the original Testground's result file: CSV with the columns `run_id,task_id,outcome,error`,
 * one row per run (RFC 4180: fields holding a comma, a quote or a line break are quoted).
 */
import type { TaskReport } from '../../api/schemas.ts';

export const csvColumns = ['run_id', 'task_id', 'outcome', 'error'] as const;

export function formatCsv(report: TaskReport): string {
  const rows = report.runs.map((run) => [
    run.runId,
    report.taskId,
    run.outcome ?? 'pending',
    run.error ?? '',
  ]);
  return [csvColumns, ...rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
