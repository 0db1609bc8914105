/**
 * A task's report, built from its record and its runs' outputs, in the format CI asks for (JUnit XML, the
 * original's CSV, Markdown for a job summary, or JSON). Served at `GET /tasks/:id/report`.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { ReportFormat, ReportInstance, RunReport, TaskReport } from '../../api/schemas.ts';
import { describeEvent, parseEventLine } from '../../core/contract/events.ts';
import type { RunRecord, TaskRecord } from '../../core/task.ts';
import { formatCsv } from './csv-report.ts';
import { formatJUnit } from './junit-report.ts';
import { formatMarkdown } from './markdown-report.ts';

export interface RenderedReport {
  contentType: string;
  body: string;
}

export interface TaskReportsDeps {
  tasks: { get(id: string): Promise<TaskRecord> };
  /** Lines of each failed instance's `run.out` and `run.err` a report quotes; default 10 each. */
  tailLines?: number;
}

// Enough for the last lines of any sane log; a huge output is never read whole for a report.
const tailBytes = 64 * 1024;

export class TaskReports {
  private readonly deps: TaskReportsDeps;

  constructor(deps: TaskReportsDeps) {
    this.deps = deps;
  }

  async render(taskId: string, format: ReportFormat): Promise<RenderedReport> {
    const report = await this.build(taskId);
    switch (format) {
      case 'junit':
        return { contentType: 'application/xml; charset=utf-8', body: formatJUnit(report) };
      case 'csv':
        return { contentType: 'text/csv; charset=utf-8', body: formatCsv(report) };
      case 'markdown':
        return { contentType: 'text/markdown; charset=utf-8', body: formatMarkdown(report) };
      case 'json':
        return { contentType: 'application/json; charset=utf-8', body: JSON.stringify(report) };
    }
  }

  async build(taskId: string): Promise<TaskReport> {
    const task = await this.deps.tasks.get(taskId);
    const ended = task.states.find((entry) => entry.state === 'complete' || entry.state === 'canceled');
    return {
      taskId: task.id,
      plan: task.plan,
      testCase: task.testCase,
      runner: task.runner,
      ...(task.outcome ? { outcome: task.outcome } : {}),
      ...(task.error ? { error: task.error } : {}),
      createdAt: task.createdAt,
      ...(ended ? { endedAt: ended.at } : {}),
      runs: await Promise.all(task.runs.map((run, index) => this.runReport(task, run, index))),
    };
  }

  private async runReport(task: TaskRecord, run: RunRecord, index: number): Promise<RunReport> {
    const asked = task.resolved.runs[index]?.groups ?? [];
    const groups = asked.map((group) => ({
      id: group.id,
      ...(run.result?.groups[group.id] ?? { total: group.instances, ok: 0, outcomes: {} }),
    }));
    const failed: ReportInstance[] = [];
    for (const instance of run.result?.instances ?? []) {
      if (instance.outcome === 'success') continue;
      const dir = path.join(run.outputsDir, instance.group, String(instance.index));
      failed.push({
        group: instance.group,
        index: instance.index,
        outcome: instance.outcome,
        reason: instance.reason,
        tail: [
          ...(await lastLines(path.join(dir, 'run.out'), this.tailLines)).map(readableEvent),
          ...(await lastLines(path.join(dir, 'run.err'), this.tailLines)).map((line) => `(stderr) ${line}`),
        ],
      });
    }
    return {
      runId: run.id,
      name: run.name,
      ...(run.outcome ? { outcome: run.outcome } : {}),
      ...(run.error ? { error: run.error } : {}),
      ...(run.startedAt ? { startedAt: run.startedAt } : {}),
      ...(run.endedAt ? { endedAt: run.endedAt } : {}),
      groups,
      failed,
    };
  }

  private get tailLines(): number {
    return this.deps.tailLines ?? 10;
  }
}

/** The last `count` non-empty lines of a file; none when it does not exist. */
async function lastLines(file: string, count: number): Promise<string[]> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (handle === undefined) return [];
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - tailBytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    const lines = buffer.toString('utf8').split('\n');
    // A read that starts mid-file starts mid-line: that first piece is not a line.
    if (start > 0) lines.shift();
    return lines.filter((line) => line.trim() !== '').slice(-count);
  } finally {
    await handle.close();
  }
}

/** An event line as a person reads it; any other line as it is. */
function readableEvent(line: string): string {
  const event = parseEventLine(line);
  return (event && describeEvent(event)) ?? line;
}
