import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { csvColumns, formatCsv } from '../../../daemon/reports/csv-report.ts';
import { formatJUnit } from '../../../daemon/reports/junit-report.ts';
import { formatMarkdown } from '../../../daemon/reports/markdown-report.ts';
import type { TaskReport } from '../../../api/schemas.ts';
import { repoRoot } from '../../helpers/processes.ts';

const run = promisify(execFile);
const schema = path.join(repoRoot, 'test/fixtures/junit/junit.xsd');

/** A task of three runs: one passed, one failed (with a crash whose output holds XML's special characters), one erred. */
const report: TaskReport = {
  taskId: 'mt0abc123',
  plan: 'example',
  testCase: 'sync',
  runner: 'local:exec',
  outcome: 'error',
  error: 'run "big": build failed',
  createdAt: '2026-11-30T10:00:00.000Z',
  endedAt: '2026-11-30T10:01:30.500Z',
  runs: [
    {
      runId: 'mt0abc123-small',
      name: 'small',
      outcome: 'success',
      startedAt: '2026-11-30T10:00:05.000Z',
      endedAt: '2026-11-30T10:00:15.250Z',
      groups: [{ id: 'peers', total: 2, ok: 2, outcomes: { success: 2 } }],
      failed: [],
    },
    {
      runId: 'mt0abc123-medium',
      name: 'medium',
      outcome: 'failure',
      error: '1 of 3 instances did not succeed (1 crash)',
      startedAt: '2026-11-30T10:00:16.000Z',
      endedAt: '2026-11-30T10:00:40.000Z',
      groups: [
        { id: 'leaders', total: 1, ok: 1, outcomes: { success: 1 } },
        { id: 'followers', total: 2, ok: 1, outcomes: { success: 1, crash: 1 } },
      ],
      failed: [
        {
          group: 'followers',
          index: 1,
          outcome: 'crash',
          reason: 'TypeError: <undefined> & "null" are not objects',
          tail: ['step 3 of 4', 'at <anonymous> (index.ts:12:3) & more'],
        },
      ],
    },
    {
      runId: 'mt0abc123-big',
      name: 'big',
      outcome: 'canceled',
      error: 'an earlier run ended as error; not started',
      groups: [{ id: 'peers', total: 4, ok: 0, outcomes: {} }],
      failed: [],
    },
  ],
};

describe('task reports', () => {
  it('JUnit: one testsuite per run, one testcase per group, valid against the JUnit schema', async () => {
    const xml = formatJUnit(report);
    const dir = await mkdtemp(path.join(tmpdir(), 'tg-junit-'));
    try {
      const file = path.join(dir, 'report.xml');
      await writeFile(file, xml);
      // xmllint (Debian's libxml2-utils) is a real validating parser; it exits non-zero on any violation.
      const { stderr } = await run('xmllint', ['--noout', '--schema', schema, file]);
      assert.match(stderr, /validates/);
      // The schema bites: a testcase without its classname is refused.
      await writeFile(file, xml.replace(/ classname="[^"]*"/, ''));
      await assert.rejects(run('xmllint', ['--noout', '--schema', schema, file]), /classname/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const parsed = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      isArray: (name) => ['testsuite', 'testcase', 'property'].includes(name),
    }).parse(xml) as {
      testsuites: {
        tests: string;
        failures: string;
        skipped: string;
        testsuite: { name: string; id: string; tests: string; testcase: Record<string, unknown>[] }[];
      };
    };
    const suites = parsed.testsuites.testsuite;
    assert.deepEqual(
      suites.map((suite) => [suite.id, suite.tests]),
      [
        ['mt0abc123-small', '1'],
        ['mt0abc123-medium', '2'],
        ['mt0abc123-big', '1'],
      ],
    );
    assert.equal(parsed.testsuites.failures, '1');
    assert.equal(parsed.testsuites.skipped, '1');
    const followers = suites[1]!.testcase[1]! as {
      name: string;
      failure: { message: string; '#text': string };
    };
    assert.equal(followers.name, 'followers');
    assert.equal(followers.failure.message, '1 of 2 instances did not succeed');
    assert.match(
      followers.failure['#text'],
      /followers\[1\] crash: TypeError: <undefined> & "null" are not objects/,
    );
    assert.match(followers.failure['#text'], /at <anonymous> \(index\.ts:12:3\) & more/);
    assert.ok('skipped' in suites[2]!.testcase[0]!, 'a canceled run is skipped');
  });

  it('CSV: the original result file columns, one row per run, quoted where needed', () => {
    const lines = formatCsv(report).trimEnd().split('\r\n');
    assert.equal(lines[0], csvColumns.join(','));
    assert.equal(lines[0], 'run_id,task_id,outcome,error');
    assert.deepEqual(lines.slice(1), [
      'mt0abc123-small,mt0abc123,success,',
      'mt0abc123-medium,mt0abc123,failure,1 of 3 instances did not succeed (1 crash)',
      'mt0abc123-big,mt0abc123,canceled,an earlier run ended as error; not started',
    ]);
    const quoted = formatCsv({ ...report, runs: [{ ...report.runs[0]!, error: 'a, "b"\nc' }] });
    assert.equal(quoted.split('\r\n')[1], 'mt0abc123-small,mt0abc123,success,"a, ""b""\nc"');
  });

  it('Markdown: the outcome, a row per run and group, and the failed instances', () => {
    const markdown = formatMarkdown(report);
    assert.match(markdown, /^### Testground example\/sync: ❌ error/);
    assert.match(markdown, /\| medium \| followers \| 1\/2 \| ❌ failure \|/);
    assert.match(markdown, /- `medium` followers\[1\] crash: TypeError/);
  });
});
