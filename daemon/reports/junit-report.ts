/**
 * A task as JUnit XML, the format CI systems show as test results: one `<testsuite>` per run, one
 * `<testcase>` per group. A group whose instances did not all succeed fails, with each failed instance's
 * reason and last lines; a run that ended as `error` errs; a canceled run is skipped.
 */
import { XMLBuilder } from 'fast-xml-parser';
import type { GroupSummary } from '../../core/run.ts';
import type { ReportInstance, RunReport, TaskReport } from '../../api/schemas.ts';

type Element = Record<string, unknown>;

const builder = (): XMLBuilder =>
  new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    textNodeName: '#text',
    format: true,
    indentBy: '  ',
    suppressEmptyNode: true,
  });

export function formatJUnit(report: TaskReport): string {
  const suites = report.runs.map((run) => suiteOf(report, run));
  const total = (key: 'tests' | 'failures' | 'errors' | 'skipped'): number =>
    suites.reduce((sum, suite) => sum + Number(suite[`@_${key}`]), 0);
  const document = {
    '?xml': { '@_version': '1.0', '@_encoding': 'UTF-8' },
    testsuites: {
      '@_name': `testground task ${report.taskId} (${report.plan}/${report.testCase})`,
      '@_tests': total('tests'),
      '@_failures': total('failures'),
      '@_errors': total('errors'),
      '@_skipped': total('skipped'),
      '@_time': secondsBetween(report.createdAt, report.endedAt),
      testsuite: suites,
    },
  };
  return builder().build(document) as string;
}

function suiteOf(report: TaskReport, run: RunReport): Element {
  const cases = run.groups.map((group) => caseOf(report, run, group));
  const count = (kind: string): number => cases.filter((testcase) => kind in testcase).length;
  return {
    '@_name': `${report.plan}/${report.testCase} run ${run.name}`,
    '@_id': run.runId,
    '@_tests': cases.length,
    '@_failures': count('failure'),
    '@_errors': count('error'),
    '@_skipped': count('skipped'),
    '@_time': secondsBetween(run.startedAt, run.endedAt),
    ...(run.startedAt ? { '@_timestamp': run.startedAt.replace(/\.\d+Z$/, 'Z') } : {}),
    properties: {
      property: [
        { '@_name': 'task_id', '@_value': report.taskId },
        { '@_name': 'run_id', '@_value': run.runId },
        { '@_name': 'plan', '@_value': report.plan },
        { '@_name': 'case', '@_value': report.testCase },
        { '@_name': 'runner', '@_value': report.runner },
        { '@_name': 'outcome', '@_value': run.outcome ?? 'pending' },
      ],
    },
    testcase: cases,
  };
}

function caseOf(report: TaskReport, run: RunReport, group: GroupSummary & { id: string }): Element {
  const testcase: Element = {
    '@_name': group.id,
    '@_classname': `${report.plan}.${report.testCase}.${run.name}`,
    '@_time': secondsBetween(run.startedAt, run.endedAt),
  };
  const failed = run.failed.filter((instance) => instance.group === group.id);
  if (run.outcome === 'canceled' || run.outcome === undefined) {
    testcase.skipped = {
      '@_message': run.error ?? (run.outcome ? 'the run was canceled' : 'the run has not ended'),
    };
  } else if (run.outcome === 'error' && failed.length === 0) {
    testcase.error = { '@_message': run.error ?? 'the run ended as error', '@_type': 'error' };
  } else if (group.ok < group.total || failed.length > 0) {
    testcase.failure = {
      '@_message': `${group.total - group.ok} of ${group.total} instances did not succeed`,
      '@_type': 'failure',
      '#text': failed.map(describeInstance).join('\n\n'),
    };
  }
  return testcase;
}

function describeInstance(instance: ReportInstance): string {
  const head = `${instance.group}[${instance.index}] ${instance.outcome}: ${instance.reason}`;
  return instance.tail.length === 0
    ? head
    : `${head}\nlast lines:\n${instance.tail.map((line) => `  ${line}`).join('\n')}`;
}

/** Seconds between two ISO times, 0 when either is missing (a run that never started took no time). */
function secondsBetween(start: string | undefined, end: string | undefined): number {
  if (start === undefined || end === undefined) return 0;
  const seconds = (Date.parse(end) - Date.parse(start)) / 1_000;
  return Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1_000) / 1_000 : 0;
}
