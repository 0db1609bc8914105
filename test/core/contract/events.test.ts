import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  encodeEventLine,
  parseEventLine,
  type InstanceEvent,
  type SdkEvent,
} from '../../../core/contract/events.ts';
import { EventRecorder } from '../../../sdk/event-recorder.ts';
import { instanceEnv, spawnInstance } from '../../sdk/spawn-instance.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'tg-events-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('parseEventLine, seed shape (our SDK)', () => {
  const envelope = (event: string): string =>
    `{"ts":1588769459341303000,"msg":"","group_id":"single","run_id":"e217c3a8a089","event":${event}}`;

  it('reads every event type', () => {
    const cases: [string, unknown][] = [
      [
        '{"type":"start","runenv":{"plan":"example","case":"sync","run":"e217c3a8a089","params":{},"instances":4,"outputs_path":"/o","network":"127.1.0.0/16","group":"single","group_instances":4}}',
        { kind: 'start', ts: 1588769459341303000 },
      ],
      [
        '{"type":"message","message":"my sequence ID: 1"}',
        { kind: 'message', message: 'my sequence ID: 1', ts: 1588769459341303000 },
      ],
      ['{"type":"finish","outcome":"ok"}', { kind: 'success', ts: 1588769459341303000 }],
      [
        '{"type":"finish","outcome":"failure","error":"boom"}',
        { kind: 'failure', error: 'boom', ts: 1588769459341303000 },
      ],
      [
        '{"type":"finish","outcome":"crash","error":"bang","stacktrace":"Error: bang\\n  at x"}',
        { kind: 'crash', error: 'bang', stacktrace: 'Error: bang\n  at x', ts: 1588769459341303000 },
      ],
      [
        '{"type":"finish","outcome":"crash","error":"bang"}',
        { kind: 'crash', error: 'bang', ts: 1588769459341303000 },
      ],
      [
        '{"type":"stage_start","name":"setup","group":"single"}',
        { kind: 'stage_start', name: 'setup', ts: 1588769459341303000 },
      ],
      [
        '{"type":"stage_end","name":"setup","group":"single"}',
        { kind: 'stage_end', name: 'setup', ts: 1588769459341303000 },
      ],
      ['{"type":"metric","metric":{"name":"x"}}', { kind: 'other', type: 'metric', ts: 1588769459341303000 }],
      [
        '{"type":"finish","outcome":"weird"}',
        { kind: 'other', type: 'finish:weird', ts: 1588769459341303000 },
      ],
    ];
    for (const [event, expected] of cases) assert.deepEqual(parseEventLine(envelope(event)), expected, event);
  });
});

describe('event lines, written by the SDK and read back', () => {
  const ts = 1_700_000_000_123_456_789n;
  const runenv = {
    plan: 'p',
    case: 'c',
    run: 'r',
    params: { query: 'a=b|c' },
    instances: 3,
    outputs_path: '/o',
    network: '127.1.0.0/16',
    group: 'g',
    group_instances: 2,
  };
  // One of every kind the recorder writes, with text that needs escaping.
  const events: SdkEvent[] = [
    { type: 'start', runenv },
    { type: 'message', message: 'hello "world"\n\tünïcode ✓ {"event":1}' },
    { type: 'stage_start', name: 'network-initialized', group: 'g' },
    { type: 'stage_end', name: 'network-initialized', group: 'g' },
    { type: 'finish', outcome: 'ok' },
    { type: 'finish', outcome: 'failure', error: 'boom: "quoted"' },
    { type: 'finish', outcome: 'crash', error: 'bang', stacktrace: 'Error: bang\n    at x (y.ts:1:2)' },
    { type: 'finish', outcome: 'crash', error: 'non-error value thrown: 3', stacktrace: '' },
  ];

  /** What the reader makes of a written event; exhaustive, so a new kind cannot skip this test. */
  function asRead(event: SdkEvent): InstanceEvent {
    switch (event.type) {
      case 'start':
        return { kind: 'start' };
      case 'message':
        return { kind: 'message', message: event.message };
      case 'stage_start':
      case 'stage_end':
        return { kind: event.type, name: event.name };
      case 'finish':
        switch (event.outcome) {
          case 'ok':
            return { kind: 'success' };
          case 'failure':
            return { kind: 'failure', error: event.error };
          case 'crash':
            // An empty stack is no stack.
            return event.stacktrace === ''
              ? { kind: 'crash', error: event.error }
              : { kind: 'crash', error: event.error, stacktrace: event.stacktrace };
        }
    }
  }

  for (const event of events) {
    const label = event.type === 'finish' ? `finish ${event.outcome}` : event.type;
    it(`round-trips ${label}`, () => {
      const lines: string[] = [];
      // A recorder per event: it writes only the first finish.
      const recorder = new EventRecorder({
        runId: 'run "1"',
        groupId: 'g',
        outputsPath: path.join(scratch, 'round-trip'),
        writeStdout: (line) => lines.push(line),
        clock: () => ts,
      });
      assert.equal(recorder.record(event), true);
      assert.equal(lines.length, 1);
      const line = lines[0] ?? '';
      assert.ok(line.endsWith('}\n'), line);
      assert.equal(line, `${encodeEventLine({ runId: 'run "1"', groupId: 'g', ts }, event)}\n`);
      // Every nanosecond digit is on the line, though a JS number cannot hold them all.
      assert.ok(line.startsWith(`{"ts":${ts},`), line);
      assert.deepEqual(JSON.parse(line), {
        ts: Number(ts),
        msg: '',
        group_id: 'g',
        run_id: 'run "1"',
        event,
      });
      assert.deepEqual(parseEventLine(line), { ...asRead(event), ts: Number(ts) });
    });
  }
});

describe('parseEventLine, keyed shape (newer official SDKs)', () => {
  it('reads every keyed event, and unknown keys as other', () => {
    const cases: [string, unknown][] = [
      ['{"start_event":{"runenv":{"plan":"p"}}}', { kind: 'start' }],
      ['{"message_event":{"message":"hi"}}', { kind: 'message', message: 'hi' }],
      ['{"success_event":{"group":"single"}}', { kind: 'success' }],
      [
        '{"failure_event":{"group":"single","error":"Error: boom"}}',
        { kind: 'failure', error: 'Error: boom' },
      ],
      [
        '{"crash_event":{"group":"single","error":"Error: bang","stacktrace":"Error: bang\\n at y"}}',
        { kind: 'crash', error: 'Error: bang', stacktrace: 'Error: bang\n at y' },
      ],
      [
        '{"stage_start_event":{"name":"network-initialized","group":"single"}}',
        { kind: 'stage_start', name: 'network-initialized' },
      ],
      [
        '{"stage_end_event":{"name":"network-initialized","group":"single"}}',
        { kind: 'stage_end', name: 'network-initialized' },
      ],
      ['{"stage_evaluated_event":{"name":"x"}}', { kind: 'other', type: 'stage_evaluated' }],
      [
        '{"message_event":{"message":{"structured":true}}}',
        { kind: 'message', message: '{"structured":true}' },
      ],
      ['{"failure_event":null}', { kind: 'failure', error: '' }],
    ];
    for (const [event, expected] of cases) {
      assert.deepEqual(
        parseEventLine(`{"event":${event},"group_id":"single","run_id":"r"}`),
        expected,
        event,
      );
    }
  });

  it('reads every line the official @testground/sdk 0.1.2 prints', async () => {
    const sdk = createRequire(import.meta.url).resolve('@testground/sdk');
    const script = path.join(scratch, 'official.cjs');
    writeFileSync(
      script,
      [
        `const { runtime } = require(${JSON.stringify(sdk)});`,
        'const runenv = runtime.currentRunEnv();',
        'runenv.recordStart();',
        'runenv.recordMessage(\'hello "world"\');',
        'runenv.recordSuccess();',
        "runenv.recordFailure(new Error('boom'));",
        "runenv.recordCrash(new Error('bang'));",
      ].join('\n'),
    );
    // It also writes a file named `stdout` into its working directory.
    const run = await spawnInstance(
      script,
      instanceEnv({ TEST_OUTPUTS_PATH: path.join(scratch, 'official') }),
      {
        withTsx: false,
        cwd: scratch,
      },
    );
    assert.equal(run.exitCode, 0, run.stderr);
    const events = run.lines.map((line) => parseEventLine(line));
    assert.deepEqual(
      events.map((event) => event && { ...event, ts: typeof event.ts }),
      [
        { kind: 'start', ts: 'number' },
        { kind: 'message', message: 'hello "world"', ts: 'number' },
        { kind: 'success', ts: 'number' },
        { kind: 'failure', error: 'Error: boom', ts: 'number' },
        {
          kind: 'crash',
          error: 'Error: bang',
          stacktrace: events[4]?.kind === 'crash' ? events[4].stacktrace : '',
          ts: 'number',
        },
      ],
    );
    assert.match(events[4]?.kind === 'crash' ? (events[4].stacktrace ?? '') : '', /^Error: bang\n\s+at /);
  });

  it('reads a line exactly as the official SDK printed it', () => {
    const line =
      '{"event":{"failure_event":{"error":"Error: boom","group":"single"}},"group_id":"single","level":"info","message":"","run_id":"r1","ts":1795460876155000000}';
    assert.deepEqual(parseEventLine(line), {
      kind: 'failure',
      error: 'Error: boom',
      ts: 1795460876155000000,
    });
  });
});

describe('parseEventLine, other lines', () => {
  it('returns undefined for anything that is not an event', () => {
    const lines = [
      '',
      'plain output',
      'the "event" word in plain text',
      '{"event": broken json',
      '["event"]',
      '{"level":"info","msg":"a JSON log line"}',
      '{"event":"a string, not an object"}',
      '{"event":null}',
      '{"event":{}}',
      '{"event":{"unrelated":1}}',
      '{"event":[1,2]}',
    ];
    for (const line of lines) assert.equal(parseEventLine(line), undefined, line);
  });

  it('tolerates surrounding whitespace and a carriage return', () => {
    assert.deepEqual(parseEventLine('  {"event":{"type":"finish","outcome":"ok"}}\r'), { kind: 'success' });
  });

  it('takes ts only when it is a number', () => {
    assert.deepEqual(parseEventLine('{"ts":"soon","event":{"type":"start"}}'), { kind: 'start' });
  });
});
