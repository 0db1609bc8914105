import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstanceEvent } from '../../core/contract/events.ts';
import {
  decideInstanceOutcome,
  decideRunOutcome,
  decideTaskOutcome,
  formatGroupSummary,
  pickTerminalEvent,
  worstOutcome,
  type InstanceExit,
} from '../../core/outcome.ts';
import type { InstanceOutcome } from '../../core/run.ts';

const success: InstanceEvent = { kind: 'success' };
const failure: InstanceEvent = { kind: 'failure', error: 'peer 3 never answered' };
const crash: InstanceEvent = { kind: 'crash', error: 'TypeError: x is undefined', stacktrace: 'at y' };
const exited = (
  exitCode: number | null,
  signal: string | null = null,
  extra: Partial<InstanceExit> = {},
): InstanceExit => ({
  exitCode,
  signal,
  timedOut: false,
  canceled: false,
  ...extra,
});

describe('decideInstanceOutcome', () => {
  const rules: [string, InstanceEvent | undefined, InstanceExit, InstanceOutcome, string][] = [
    ['success + exit 0', success, exited(0), 'success', 'recorded success and exited with code 0'],
    ['success + non-zero exit', success, exited(3), 'crash', 'exited with code 3 after recording success'],
    [
      'success + signal',
      success,
      exited(null, 'SIGSEGV'),
      'crash',
      'killed by signal SIGSEGV after recording success',
    ],
    ['failure event', failure, exited(1), 'failure', 'peer 3 never answered'],
    ['failure event + exit 0 (official SDK)', failure, exited(0), 'failure', 'peer 3 never answered'],
    [
      'failure without message',
      { kind: 'failure', error: '' },
      exited(0),
      'failure',
      'recorded failure without an error message (exited with code 0)',
    ],
    ['crash event', crash, exited(1), 'crash', 'TypeError: x is undefined'],
    [
      'crash without message',
      { kind: 'crash', error: '' },
      exited(1),
      'crash',
      'recorded a crash without an error message (exited with code 1)',
    ],
    [
      'no event + non-zero exit',
      undefined,
      exited(1),
      'crash',
      'exited with code 1 without recording an outcome',
    ],
    [
      'no event + signal',
      undefined,
      exited(null, 'SIGKILL'),
      'crash',
      'killed by signal SIGKILL without recording an outcome',
    ],
    [
      'no event + no code or signal',
      undefined,
      exited(null),
      'crash',
      'ended without an exit code or signal without recording an outcome',
    ],
    ['no event + exit 0', undefined, exited(0), 'no_outcome', 'exited 0 without recording an outcome'],
    ['OOM kill', success, exited(137, null, { oomKilled: true }), 'crash', 'killed: out of memory'],
    [
      'OOM kill, no event',
      undefined,
      exited(137, null, { oomKilled: true }),
      'crash',
      'killed: out of memory',
    ],
    [
      'timeout',
      undefined,
      exited(null, 'SIGTERM', { timedOut: true }),
      'timeout',
      'still running at the run timeout without recording an outcome; killed',
    ],
    [
      'timeout after recording success',
      success,
      exited(null, 'SIGKILL', { timedOut: true }),
      'timeout',
      'recorded success but was still running at the run timeout; killed',
    ],
    [
      'timeout after recording failure',
      failure,
      exited(0, null, { timedOut: true }),
      'timeout',
      'recorded failure: peer 3 never answered but was still running at the run timeout; killed',
    ],
    [
      'canceled',
      undefined,
      exited(null, 'SIGTERM', { canceled: true }),
      'canceled',
      'stopped because the run was canceled',
    ],
    [
      'canceled wins over timeout and a recorded event',
      crash,
      exited(null, 'SIGTERM', { canceled: true, timedOut: true, oomKilled: true }),
      'canceled',
      'stopped because the run was canceled (it had recorded crash: TypeError: x is undefined)',
    ],
    [
      'a non-terminal event counts as none',
      { kind: 'message', message: 'hi' },
      exited(0),
      'no_outcome',
      'exited 0 without recording an outcome',
    ],
  ];

  for (const [name, terminal, exit, outcome, reason] of rules) {
    it(name, () => assert.deepEqual(decideInstanceOutcome(terminal, exit), { outcome, reason }));
  }
});

describe('pickTerminalEvent', () => {
  it('keeps the worst terminal event: crash > failure > success', () => {
    assert.equal(pickTerminalEvent(undefined, success), success);
    assert.equal(pickTerminalEvent(success, failure), failure);
    assert.equal(pickTerminalEvent(failure, success), failure);
    assert.equal(pickTerminalEvent(failure, crash), crash);
    assert.equal(pickTerminalEvent(crash, failure), crash);
    assert.equal(pickTerminalEvent(success, crash), crash);
  });

  it('keeps the first of equal rank and ignores non-terminal events', () => {
    const second: InstanceEvent = { kind: 'failure', error: 'second' };
    assert.equal(pickTerminalEvent(failure, second), failure);
    assert.equal(pickTerminalEvent(undefined, { kind: 'start' }), undefined);
    assert.equal(pickTerminalEvent(success, { kind: 'message', message: 'after' }), success);
    assert.equal(pickTerminalEvent(success, { kind: 'other', type: 'metric' }), success);
  });
});

describe('decideRunOutcome', () => {
  const many = (group: string, outcome: InstanceOutcome, count: number) =>
    Array.from({ length: count }, () => ({ group, outcome }));

  it('succeeds when every instance of every group succeeded', () => {
    assert.deepEqual(decideRunOutcome([...many('a', 'success', 2), ...many('b', 'success', 1)]), {
      outcome: 'success',
      reason: 'all 3 instances succeeded',
      groups: {
        a: { total: 2, ok: 2, outcomes: { success: 2 } },
        b: { total: 1, ok: 1, outcomes: { success: 1 } },
      },
    });
    assert.equal(decideRunOutcome(many('single', 'success', 1)).reason, 'all 1 instance succeeded');
  });

  it('fails without instances', () => {
    assert.deepEqual(decideRunOutcome([]), { outcome: 'failure', reason: 'no instances ran', groups: {} });
  });

  it('fails, counting what went wrong, when any instance did not succeed', () => {
    const decided = decideRunOutcome([
      ...many('single', 'success', 7),
      ...many('single', 'crash', 1),
      ...many('single', 'failure', 2),
    ]);
    assert.equal(decided.outcome, 'failure');
    assert.equal(decided.reason, '3 of 10 instances did not succeed (2 failure, 1 crash)');
    assert.deepEqual(decided.groups, {
      single: { total: 10, ok: 7, outcomes: { success: 7, crash: 1, failure: 2 } },
    });
  });

  it('counts no outcome and timeout as not succeeding', () => {
    const decided = decideRunOutcome([
      ...many('a', 'no_outcome', 1),
      ...many('b', 'timeout', 2),
      ...many('b', 'success', 1),
    ]);
    assert.equal(decided.outcome, 'failure');
    assert.equal(decided.reason, '3 of 4 instances did not succeed (2 timeout, 1 no outcome)');
  });

  it('is canceled when any instance was canceled', () => {
    const decided = decideRunOutcome([
      ...many('a', 'canceled', 2),
      ...many('a', 'failure', 1),
      ...many('b', 'success', 1),
    ]);
    assert.equal(decided.outcome, 'canceled');
    assert.equal(decided.reason, 'the run was canceled: 2 of 4 instances were stopped');
  });
});

describe('formatGroupSummary', () => {
  it('prints one line per group, listing what did not succeed', () => {
    assert.deepEqual(
      formatGroupSummary({
        single: { total: 10, ok: 10, outcomes: { success: 10 } },
        miners: { total: 10, ok: 7, outcomes: { success: 7, crash: 1, failure: 2 } },
        late: { total: 3, ok: 0, outcomes: { timeout: 1, no_outcome: 1, canceled: 1 } },
      }),
      [
        'single: 10/10 ok',
        'miners: 7/10 ok (2 failure, 1 crash)',
        'late: 0/3 ok (1 timeout, 1 no outcome, 1 canceled)',
      ],
    );
    assert.deepEqual(formatGroupSummary({}), []);
  });
});

describe('worstOutcome and decideTaskOutcome (a task of several runs)', () => {
  it('ranks error > canceled > failure > success, whatever the order', () => {
    assert.equal(worstOutcome([]), 'success');
    assert.equal(worstOutcome(['success', 'failure', 'success']), 'failure');
    assert.equal(worstOutcome(['failure', 'canceled']), 'canceled');
    assert.equal(worstOutcome(['canceled', 'error', 'failure']), 'error');
  });

  it("names the first run with the worst outcome; a single run's error is the task's as it is", () => {
    assert.deepEqual(
      decideTaskOutcome([
        { name: 'a', outcome: 'success' },
        { name: 'b', outcome: 'failure', error: '1 of 3 instances did not succeed (1 failure)' },
        { name: 'c', outcome: 'failure', error: 'later' },
      ]),
      { outcome: 'failure', error: 'run b: 1 of 3 instances did not succeed (1 failure)' },
    );
    assert.deepEqual(decideTaskOutcome([{ name: 'a', outcome: 'success' }]), { outcome: 'success' });
    assert.deepEqual(decideTaskOutcome([{ name: 'default', outcome: 'error', error: 'build broke' }]), {
      outcome: 'error',
      error: 'build broke',
    });
  });
});
