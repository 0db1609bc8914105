/**
 * The tutorial of docs/writing-plans.md followed as a reader would: plans/ping-pong's files (which
 * writing-plans.test.ts proves are the tutorial's) copied into an empty folder and run from their
 * composition through the real CLI, with the command the tutorial gives, on a real daemon process
 * (local:exec).
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runMetricsSchema } from '../../api/schemas.ts';
import { runCli, scratchDir, startDaemonProcess, type DaemonProcess } from '../helpers/processes.ts';
import { filesOf, readTutorial, tutorialPlanDir } from './tutorial-files.ts';

const tutorialCommand = 'testground run composition -f composition.toml -p . --wait';

describe('docs/writing-plans.md, followed from an empty folder on a real daemon', () => {
  const tutorial = readTutorial();
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let folder: string;
  before(async () => {
    scratch = await scratchDir('writing-plans');
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
    folder = path.join(scratch.dir, 'ping-pong');
    await mkdir(folder);
    for (const name of filesOf(tutorial).keys()) {
      await copyFile(path.join(tutorialPlanDir, name), path.join(folder, name));
    }
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  it(`"${tutorialCommand}" plays every round in both groups and exits 0`, async () => {
    assert.ok(tutorial.includes(tutorialCommand), 'the tutorial gives this command');
    const args = tutorialCommand.split(' ').slice(1);
    const result = await runCli(['--endpoint', daemon.url, ...args], { cwd: folder });
    assert.equal(result.code, 0, `exit code; stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /^ping: 2\/2 ok$/m);
    assert.match(result.stdout, /^pong: 2\/2 ok$/m);
    for (const line of ['ping 1 played 5 rounds', 'ping 2 played 5 rounds', 'pong 1 played 5 rounds']) {
      assert.ok(result.stdout.includes(line), `the live log shows "${line}":\n${result.stdout}`);
    }
    assert.doesNotMatch(result.stderr, /warning/, 'the composition and the manifest fit each other');

    // What the tutorial says the reader finds afterwards: the ping group's 10 round trips (2 pairs, 5
    // rounds), each at least the pong group's 20 ms hold.
    const runId = /run (\w+) queued/.exec(result.stdout)?.[1];
    assert.ok(runId, `the CLI names the run:\n${result.stdout}`);
    const response = await fetch(`${daemon.url}/api/v1/runs/${runId}/metrics`);
    assert.equal(response.status, 200);
    const roundTrip = runMetricsSchema.parse(await response.json()).groups.ping?.round_trip;
    assert.ok(roundTrip, 'the ping group recorded round_trip');
    assert.equal(roundTrip.count, 10);
    assert.equal(roundTrip.unit, 'ms');
    assert.ok(
      roundTrip.min >= 20,
      `every round trip waited for the 20 ms hold: ${JSON.stringify(roundTrip)}`,
    );
  });
});
