import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readTgz } from '../helpers/archive.ts';
import { runSingle } from '../helpers/daemon-api.ts';
import { scratchDir, startDaemonProcess, type DaemonProcess } from '../helpers/processes.ts';

interface SeedLine {
  ts: number;
  msg: string;
  group_id: string;
  run_id: string;
  event: { type: string; message?: string; outcome?: string; runenv?: Record<string, unknown> };
}

describe('the seed walkthrough through the real CLI and daemon (local:exec)', () => {
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    scratch = await scratchDir('walkthrough');
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  it('runs example/sync with 10 instances: exit 0, live output, one leader, 10 run.out in the archive', async () => {
    const archive = path.join(scratch.dir, 'walkthrough.tgz');
    const result = await runSingle(daemon.url, 'example', 'sync', [
      '--builder',
      'exec:node',
      '--runner',
      'local:exec',
      '--instances',
      '10',
      // The seed's sleeps (up to 4 s for followers, then 6 s for the leader) at a tenth.
      '--test-param',
      'sleep_scale=0.1',
      '--wait',
      '--collect',
      '--collect-file',
      archive,
    ]);
    assert.equal(result.code, 0, `exit code; stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /^single: 10\/10 ok$/m);
    assert.match(result.stdout, /single\[\d\] my sequence ID: \d+/, 'instance output is streamed to the CLI');
    const runId = /run (\w+) queued/.exec(result.stdout)?.[1];
    assert.ok(runId, 'the CLI names the run');

    const entries = await readTgz(archive);
    const runOuts = [...entries.keys()].filter((name) => name.endsWith('/run.out')).sort();
    assert.deepEqual(
      runOuts,
      Array.from({ length: 10 }, (_, index) => `${runId}/single/${index}/run.out`).sort(),
    );
    let leaders = 0;
    let followers = 0;
    for (const name of runOuts) {
      const lines = entries
        .get(name)!
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as SeedLine);
      const first = lines[0]!;
      const last = lines.at(-1)!;
      assert.equal(first.event.type, 'start');
      assert.equal(first.run_id, runId);
      assert.equal(first.group_id, 'single');
      assert.equal(typeof first.ts, 'number');
      assert.ok(first.ts > 1e18, 'ts is Unix time in nanoseconds');
      assert.equal(first.event.runenv?.plan, 'example');
      assert.equal(first.event.runenv?.case, 'sync');
      assert.equal(first.event.runenv?.instances, 10);
      assert.equal(first.event.runenv?.network, '127.1.0.0/16');
      assert.deepEqual(last.event, { type: 'finish', outcome: 'ok' });
      const messages = lines
        .filter((line) => line.event.type === 'message')
        .map((line) => line.event.message);
      assert.deepEqual(messages.slice(0, 2), [
        'waiting for network to initialize',
        'network initialization complete',
      ]);
      assert.ok(messages.some((message) => /^my sequence ID: \d+$/.test(message ?? '')));
      if (messages.includes("i'm the leader.")) {
        leaders += 1;
        assert.deepEqual(messages.slice(-7), [
          'my sequence ID: 1',
          "i'm the leader.",
          'waiting for 9 instances to become ready',
          'the followers are all ready',
          'ready...',
          'set...',
          'go, release followers!',
        ]);
      }
      if (
        messages.some((message) =>
          /^i'm a follower; signalling ready after [0-4] seconds$/.test(message ?? ''),
        )
      ) {
        followers += 1;
        assert.deepEqual(messages.slice(-2), ['follower signalling now', 'i have been released']);
      }
      // Each event exactly once: no line doubled by both the SDK and the runner writing run.out.
      assert.equal(new Set(lines.map((line) => JSON.stringify(line))).size, lines.length);
    }
    assert.equal(leaders, 1, 'exactly one leader');
    assert.equal(followers, 9);
  });

  it('runs a plan written only against the official @testground/sdk@0.1.2 across 8 instances to success', async () => {
    const result = await runSingle(daemon.url, 'official-sdk', 'sync', ['--instances', '8', '--wait']);
    assert.equal(result.code, 0, `exit code; stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /^single: 8\/8 ok$/m);
  });
});
