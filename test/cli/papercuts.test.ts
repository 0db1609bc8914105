/**
 * The CLI's small failures a new user met (issue 12, point 3), each with the exact message they now get:
 * a closed pipe, a refusal printed once, `run single` refusals in flags, an endpoint without a scheme, a
 * server that is not a daemon, and a composition's plan found from the composition file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli as testground } from '../../cli/main.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { Gate } from '../helpers/fake-components.ts';
import { BuildError } from '../../core/errors.ts';
import { cliEntry, repoRoot, scratchDir } from '../helpers/processes.ts';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

const noStackTrace = (text: string): void => {
  assert.doesNotMatch(text, /^\s+at .+:\d+:\d+\)?$/m, `no stack trace reaches the user:\n${text}`);
};

describe('CLI papercuts', () => {
  let api: TestApp;
  let server: Server;
  let endpoint: string;
  let htmlServer: Server;
  let htmlEndpoint: string;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  const cwd = process.cwd();

  before(async () => {
    api = await startTestApp();
    server = api.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Another web server on the port the user pointed at: a long HTML page for every request.
    htmlServer = createServer((_request, response) => {
      response.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
      response.end(
        `<!DOCTYPE html><html><head><title>Not Found</title></head><body>${'<p>x</p>'.repeat(500)}</body></html>`,
      );
    });
    htmlServer.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => htmlServer.once('listening', resolve));
    htmlEndpoint = `http://127.0.0.1:${(htmlServer.address() as AddressInfo).port}`;
    scratch = await scratchDir('cli-papercuts');
  });
  after(async () => {
    process.chdir(cwd);
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await new Promise((resolve) => htmlServer?.close(resolve));
    await api?.close();
    await scratch?.remove();
  });

  const cli = async (...args: string[]): Promise<Ran> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await testground(
      ['node', 'testground', ...args],
      {
        runDaemon: () => assert.fail('no daemon is started here'),
        runSyncService: () => assert.fail('no sync service is started here'),
      },
      { out: (text) => out.push(text), err: (text) => err.push(text) },
    );
    const ran = { code, stdout: out.join('\n'), stderr: err.join('\n') };
    noStackTrace(ran.stdout + ran.stderr);
    return ran;
  };
  const placebo = path.join(repoRoot, 'plans/placebo');

  it('a reader that closes the pipe early (| head) ends the command quietly, with no EPIPE trace', async () => {
    const ran = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cliEntry, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      // The read end is closed before the CLI (still loading) writes a byte: its first write meets EPIPE.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.once('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(ran.stderr, '', 'nothing on stderr');
    assert.equal(ran.code, 0);
  });

  it("keeps the task's outcome as the exit code when the reader closes the pipe early (pipefail sees it)", async () => {
    // The run waits at the gate, so the CLI meets the closed pipe while it still follows the task.
    const gate = new Gate();
    api.runner.gate = gate;
    api.runner.outcomes.set('single/0', 'failure');
    try {
      const started = api.runner.nextRun();
      const ran = new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [cliEntry, '--endpoint', endpoint, 'run', 'single', '-p', placebo, '-t', 'ok', '-i', '1', '--wait'],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        child.stdout.destroy();
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.once('close', (code) => resolve({ code, stderr }));
      });
      await started;
      // Long enough for the CLI to print "queued" and follow the log (its writes meet EPIPE meanwhile).
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      gate.open();
      const closedEarly = await ran;
      assert.equal(closedEarly.stderr, '');
      assert.equal(closedEarly.code, 1, 'a failed run exits 1, read whole or not');
    } finally {
      api.runner.gate = undefined;
      api.runner.outcomes.clear();
    }
  });

  it("says a build's long error in full once while following, and by its first line after", async () => {
    api.builder.failure = new BuildError(
      'exec:node: the plan does not type-check (2 errors; build_config.typecheck = false (--build-cfg typecheck=false) skips the check):\n' +
        "index.ts:1:7 error TS2322: Type 'string' is not assignable to type 'number'.\n" +
        "index.ts:2:7 error TS2322: Type 'number' is not assignable to type 'string'.",
    );
    try {
      const ran = await cli(
        '--endpoint',
        endpoint,
        'run',
        'single',
        '-p',
        placebo,
        '-t',
        'ok',
        '-i',
        '1',
        '--wait',
      );
      assert.equal(ran.code, 3, ran.stdout);
      const said = ran.stdout.split('\n').filter((line) => line.includes('index.ts:1:7 error TS2322'));
      assert.equal(said.length, 1, `the first compiler error is printed once:\n${ran.stdout}`);
      assert.match(
        ran.stdout,
        /^run \w+: complete, outcome error \(exec:node: the plan does not type-check \(2 errors; build_config\.typecheck = false \(--build-cfg typecheck=false\) skips the check\): …\)$/m,
      );
      assert.match(ran.stdout, /task complete: error \(exec:node: the plan does not type-check .*: …\)$/m);
    } finally {
      api.builder.failure = undefined;
    }
  });

  it("prints a refusal's problems once, one per line under a headline", async () => {
    const file = path.join(scratch.dir, 'bad.toml');
    await writeFile(
      file,
      '[global]\nplan = "placebo"\ncase = "nosuch"\ntotal_instances = 1\nbuilder = "exec:node"\nrunner = "local:exec"\n' +
        '[[groups]]\nid = "a"\ninstances = { count = 1 }\n',
    );
    const ran = await cli('--endpoint', endpoint, 'run', 'composition', '-f', file, '-p', placebo);
    assert.equal(ran.code, 2);
    assert.equal(
      ran.stderr,
      [
        'error: composition has 1 problem:',
        '  global.case: test case "nosuch" is not in plan "placebo"; its test cases: ok, failure, crash, stall, oom, no-outcome, sleep',
      ].join('\n'),
    );
  });

  it('says the refusals of "run single" in the flags the user typed, not in composition paths', async () => {
    const ran = await cli('--endpoint', endpoint, 'run', 'single', '-p', placebo, '-t', 'ok', '-i', '0');
    assert.equal(ran.code, 2);
    assert.equal(
      ran.stderr,
      ['error: the run has 1 problem:', '  --instances: must be at least 1, got 0'].join('\n'),
    );

    const config = await cli(
      '--endpoint',
      endpoint,
      'run',
      'single',
      '-p',
      placebo,
      '-t',
      'ok',
      '-i',
      '1',
      '--build-config',
      'colour=red',
      '--timeout',
      '5x',
      '-r',
      'local:nowhere',
    );
    assert.equal(config.code, 2);
    const lines = config.stderr.split('\n');
    assert.equal(lines[0], 'error: the run has 3 problems:');
    assert.deepEqual(
      lines
        .slice(1)
        .map((line) => line.slice(0, line.indexOf(': ')))
        .sort(),
      ['  --build-config colour=…', '  --runner', '  --timeout'],
    );
    assert.ok(
      lines.includes(
        '  --timeout: "5x" is not a duration; use a number with a unit, like "90s" or "10m" (units: ns, us, ms, s, m, h; combine them as in "1h30m")',
      ),
      config.stderr,
    );
  });

  it('refuses an endpoint without http://, saying how to write it, instead of suggesting to start a daemon', async () => {
    const ran = await cli('--endpoint', '127.0.0.1:8042', 'tasks');
    assert.equal(ran.code, 2);
    assert.equal(
      ran.stderr,
      'error: the daemon endpoint "127.0.0.1:8042" (--endpoint or TESTGROUND_ENDPOINT) is not an http:// or https:// URL; write it with its scheme, like http://127.0.0.1:8042',
    );
    const named = await cli('--endpoint', 'localhost:8042', 'status', '-t', 'x');
    assert.match(named.stderr, /"localhost:8042" .* like http:\/\/localhost:8042$/);
  });

  it('sums up a server that is not a Testground daemon in one line, never dumping its page', async () => {
    const ran = await cli('--endpoint', htmlEndpoint, 'status', '-t', 'abc');
    assert.equal(ran.code, 5);
    assert.equal(
      ran.stderr,
      `error: the server at ${htmlEndpoint} is not a Testground daemon: it answered GET /api/v1/tasks/abc with HTTP 404 (text/html, "Not Found"); check --endpoint / TESTGROUND_ENDPOINT (a daemon answers /api/v1/health with JSON)`,
    );
  });

  it("finds a composition's plan from the composition file, wherever the user stands", async () => {
    const project = path.join(scratch.dir, 'project');
    await mkdir(path.join(project, 'compositions'), { recursive: true });
    await cp(placebo, path.join(project, 'plans', 'placebo'), { recursive: true });
    await cp(placebo, path.join(project, 'my-plan'), { recursive: true });
    const composition = (plan: string): string =>
      `[global]\nplan = "${plan}"\ncase = "ok"\ntotal_instances = 1\nbuilder = "exec:node"\nrunner = "local:exec"\n` +
      '[[groups]]\nid = "a"\ninstances = { count = 1 }\n';
    await writeFile(path.join(project, 'compositions', 'by-name.toml'), composition('placebo'));
    await writeFile(path.join(project, 'compositions', 'by-path.toml'), composition('../my-plan'));
    const elsewhere = path.join(scratch.dir, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    process.chdir(elsewhere);
    try {
      for (const file of ['by-name.toml', 'by-path.toml']) {
        const ran = await cli(
          '--endpoint',
          endpoint,
          'run',
          'composition',
          '-f',
          path.join(project, 'compositions', file),
        );
        assert.equal(ran.code, 0, `${file}: ${ran.stderr}`);
        assert.match(ran.stdout, /^run \w+ queued \(task \w+\)$/m);
      }
      const missing = path.join(project, 'compositions', 'missing.toml');
      await writeFile(missing, composition('../nowhere'));
      const refused = await cli('--endpoint', endpoint, 'run', 'composition', '-f', missing);
      assert.equal(refused.code, 2);
      assert.equal(
        refused.stderr,
        `error: plan "../nowhere" not found: looked for manifest.toml in ${path.join(project, 'nowhere')}, ${path.join(scratch.dir, 'nowhere')}`,
      );
    } finally {
      process.chdir(cwd);
    }
  });
});
