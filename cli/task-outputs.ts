import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TaskView } from '../api/schemas.ts';
import type { ApiClient } from './api-client.ts';
import type { WaitOptions } from './commands/run.ts';
import { isSingleRun, type Output } from './task-printer.ts';

/**
 * The reports a CI job asked for, once the task has ended: JUnit XML (`--junit`), the original's result file
 * (`--result-file`), and a Markdown summary appended to `$GITHUB_STEP_SUMMARY` when the job has one. A report
 * that cannot be written is said, and does not change the exit code: the outcome does.
 */
export async function writeReports(
  client: ApiClient,
  task: TaskView,
  options: WaitOptions,
  output: Output,
): Promise<void> {
  const wanted: { file: string; format: 'junit' | 'csv' | 'markdown'; append: boolean }[] = [
    ...(options.junit ? [{ file: options.junit, format: 'junit' as const, append: false }] : []),
    ...(options.resultFile ? [{ file: options.resultFile, format: 'csv' as const, append: false }] : []),
    ...(process.env.GITHUB_STEP_SUMMARY
      ? [{ file: process.env.GITHUB_STEP_SUMMARY, format: 'markdown' as const, append: true }]
      : []),
  ];
  for (const report of wanted) {
    try {
      const body = await client.report(task.id, report.format);
      const file = path.resolve(report.file);
      await (report.append ? appendFile(file, body) : writeFile(file, body));
      output.out(`${report.format === 'csv' ? 'result file' : `${report.format} report`}: ${file}`);
    } catch (error) {
      output.err(
        `could not write the ${report.format} report to ${report.file}: ${(error as Error).message}`,
      );
    }
  }
}

/** `--collect`: the ended task's outputs as an archive; a failure is said and does not change the exit code. */
export async function collectOutputs(
  client: ApiClient,
  task: TaskView,
  options: WaitOptions,
  output: Output,
): Promise<void> {
  if (!options.collect) return;
  // A task of one `default` run is that run, so the archive keeps the run's name.
  const name = isSingleRun(task) ? task.run_id : task.id;
  const file = path.resolve(options.collectFile ?? `${name}.tgz`);
  try {
    await client.downloadOutputs(task.id, file);
    output.out(`outputs: ${file}`);
  } catch (error) {
    output.err(`could not collect the outputs: ${(error as Error).message}`);
  }
}
