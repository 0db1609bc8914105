/**
 * What each fixture composition of test/fixtures/compositions/ should do, as expectations.json says it:
 * read once here for the in-process test (test/plan/fixtures.test.ts) and the end-to-end one
 * (test/e2e/fixtures.test.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ResolvedGroup } from '../../core/run.ts';
import { repoRoot } from './processes.ts';

export const compositionsDir = path.join(repoRoot, 'test/fixtures/compositions');
export const fixturePlansDir = path.join(repoRoot, 'test/fixtures/plans');

export interface ExpectedFinding {
  path: string;
  pattern: string;
}

/** Only what is asserted; `artifact: null` means the group has none. */
export interface ExpectedGroup {
  id: string;
  instances: number;
  builder?: string;
  buildConfig?: Record<string, unknown>;
  testParams?: Record<string, string>;
  dependencies?: ResolvedGroup['dependencies'];
  resources?: ResolvedGroup['resources'];
  artifact?: string | null;
}

export interface ExpectedRun {
  id: string;
  instances: number;
  outcome: 'success' | 'failure';
  plan?: string;
  disableMetrics?: boolean;
  timeoutMs?: number;
  groups: ExpectedGroup[];
}

export interface Expectation {
  row: string;
  plan: string;
  requires?: string[];
  template?: boolean;
  env?: Record<string, string>;
  runs?: ExpectedRun[];
  warnings?: ExpectedFinding[];
  refused?: ExpectedFinding[];
}

/** Every fixture's expectation, by the fixture's file name without `.toml`. */
export const fixtureExpectations: Record<string, Expectation> = (
  JSON.parse(readFileSync(path.join(compositionsDir, 'expectations.json'), 'utf8')) as {
    fixtures: Record<string, Expectation>;
  }
).fixtures;
