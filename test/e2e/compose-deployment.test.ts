import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { readTgz } from '../helpers/archive.ts';
import { repoRoot, runCli, scratchDir, waitFor } from '../helpers/processes.ts';

const execFileAsync = promisify(execFile);

/** The deployment of docs/operating.md "Running a shared daemon", as a team brings it up: offline, with Debian's docker-compose. */
describe('the compose deployment (docker-compose.yml) brought up offline with docker-compose', () => {
  const project = `tgcompose${randomBytes(4).toString('hex')}`;
  const token = randomBytes(16).toString('hex');
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let env: Record<string, string>;
  let url: string;
  let up = false;
  let daemonId: string | undefined;

  const compose = async (args: string[], timeoutMs: number): Promise<string> => {
    try {
      const { stdout, stderr } = await execFileAsync('docker-compose', ['-p', project, ...args], {
        cwd: repoRoot,
        env: { ...process.env, ...env },
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      });
      return `${stdout}${stderr}`;
    } catch (error) {
      const failure = error as Error & { stdout?: string; stderr?: string };
      throw new Error(
        `docker-compose ${args.join(' ')} failed: ${failure.message}\n${failure.stdout ?? ''}${failure.stderr ?? ''}`,
      );
    }
  };
  const docker = async (args: string[]): Promise<string[]> => {
    const { stdout } = await execFileAsync('docker', args);
    return stdout.split('\n').filter((line) => line.trim() !== '');
  };
  const cli = (args: string[]): ReturnType<typeof runCli> =>
    runCli(['--endpoint', url, '--token', token, ...args]);

  before(async () => {
    try {
      await execFileAsync('docker-compose', ['version']);
    } catch (error) {
      throw new Error(
        `docker-compose is not installed (${(error as Error).message}); Debian: apt-get install -y docker-compose`,
      );
    }
    // The daemon's image copies the installed node_modules; a symlink (a git worktree sharing another
    // checkout's install) would be copied as a dangling link.
    const modules = await lstat(path.join(repoRoot, 'node_modules'));
    assert.ok(
      modules.isDirectory(),
      `${repoRoot}/node_modules must be a directory installed by npm ci (it is copied into the image), not a symlink`,
    );
    scratch = await scratchDir('compose');
    const { stdout } = await execFileAsync('bash', [path.join(repoRoot, 'scripts/compose-images.sh')], {
      timeout: 120_000,
    });
    env = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    assert.match(env.TESTGROUND_REDIS_IMAGE ?? '', /^testground-host\/redis:[0-9a-f]{12}$/);
    assert.match(env.TESTGROUND_DAEMON_BASE ?? '', /^testground-host\/daemon-base:[0-9a-f]{12}$/);
    const [daemonPort, redisPort] = [await freePort(), await freePort()];
    Object.assign(env, {
      TESTGROUND_TOKEN: token,
      TESTGROUND_PORT: String(daemonPort),
      TESTGROUND_REDIS_PORT: String(redisPort),
      // Bind-mounted at the same path inside, so the engine finds instance outputs the daemon names.
      TESTGROUND_HOST_HOME: path.join(scratch.dir, 'home'),
      TESTGROUND_BIND: '127.0.0.1',
    });
    url = `http://127.0.0.1:${daemonPort}`;
    up = true;
    await compose(['up', '-d', '--build'], 150_000);
    await waitFor(
      'the daemon in the compose deployment to answer /api/v1/health',
      async () => {
        try {
          const response = await fetch(`${url}/api/v1/health`);
          return response.ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      60_000,
    );
    const log = await compose(['logs', '--no-color', 'daemon'], 30_000);
    daemonId = /"daemonId":"(\w+)"/.exec(log)?.[1];
  });

  after(async () => {
    if (up) {
      const daemonLog = await compose(['logs', '--no-color', '--tail', '30', 'daemon'], 30_000).catch(
        (error: Error) => error.message,
      );
      try {
        await compose(['down', '--volumes', '--rmi', 'local', '--timeout', '20'], 90_000);
      } catch (error) {
        console.error(`${(error as Error).message}\nthe daemon's last lines:\n${daemonLog}`);
        throw error;
      }
    }
    // Whatever the runs left (the assertions above say so): removed, so that a failure leaves nothing.
    if (daemonId) {
      const made = `label=testground.daemon=${daemonId}`;
      const containers = await docker(['ps', '-aq', '--filter', made]).catch(() => []);
      if (containers.length > 0) await docker(['rm', '-f', ...containers]).catch(() => []);
      const networks = await docker(['network', 'ls', '-q', '--filter', made]).catch(() => []);
      if (networks.length > 0) await docker(['network', 'rm', ...networks]).catch(() => []);
    }
    await scratch?.remove();
  });

  it('needs the token, runs the seed walkthrough from the CLI, hands out its outputs, and shapes the network', async () => {
    const anonymous = await fetch(`${url}/api/v1/tasks`);
    assert.equal(anonymous.status, 401, 'a request without the token is refused');

    const archive = path.join(scratch.dir, 'walkthrough.tgz');
    const walkthrough = await cli([
      'run',
      'single',
      '--plan',
      'example',
      '--testcase',
      'sync',
      '--builder',
      'docker:node',
      '--runner',
      'local:docker',
      '--instances',
      '10',
      '--test-param',
      'sleep_scale=0.1',
      '--wait',
      '--collect',
      '--collect-file',
      archive,
    ]);
    assert.equal(
      walkthrough.code,
      0,
      `exit code; stdout:\n${walkthrough.stdout}\nstderr:\n${walkthrough.stderr}`,
    );
    assert.match(walkthrough.stdout, /^single: 10\/10 ok$/m);
    const runId = /run (\w+) queued/.exec(walkthrough.stdout)?.[1];
    assert.ok(runId, `the CLI names the run; stdout:\n${walkthrough.stdout}`);
    const entries = await readTgz(archive);
    const runOuts = [...entries.keys()].filter((name) => name.endsWith('/run.out')).sort();
    assert.deepEqual(
      runOuts,
      Array.from({ length: 10 }, (_, index) => `${runId}/single/${index}/run.out`).sort(),
    );
    for (const name of runOuts) {
      const last = JSON.parse(entries.get(name)!.trim().split('\n').at(-1)!) as { event: unknown };
      assert.deepEqual(last.event, { type: 'finish', outcome: 'ok' }, name);
    }

    // configureNetwork through the deployment: the daemon enters the containers' namespaces (pid: host,
    // CAP_SYS_ADMIN) and shapes them with the image's tc, iptables and (without netem) packet delayer.
    const latency = await cli([
      'run',
      'single',
      '--plan',
      'network',
      '--testcase',
      'latency',
      '--builder',
      'docker:node',
      '--runner',
      'local:docker',
      '--instances',
      '2',
      '--test-param',
      'latency=50ms',
      '--wait',
    ]);
    assert.equal(latency.code, 0, `exit code; stdout:\n${latency.stdout}\nstderr:\n${latency.stderr}`);
    const measured = /measurement: (\{.*\})/.exec(latency.stdout)?.[1];
    assert.ok(measured, `the plan reports its round trips; stdout:\n${latency.stdout}`);
    const { medianRttMs } = JSON.parse(measured) as { medianRttMs: number };
    assert.ok(medianRttMs >= 95, `median round trip ${medianRttMs} ms with 50 ms on each side's egress`);

    const tasks = (await (
      await fetch(`${url}/api/v1/tasks`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as unknown;
    assert.ok(JSON.stringify(tasks).includes(runId), 'the task is listed with the token');
  });

  it('takes the deployment down leaving no container, volume, network or built daemon image', async () => {
    const daemonLog = await compose(['logs', '--no-color', 'daemon'], 30_000);
    await compose(['down', '--volumes', '--rmi', 'local', '--timeout', '20'], 90_000);
    up = false;
    const label = `label=com.docker.compose.project=${project}`;
    assert.deepEqual(await docker(['ps', '-aq', '--filter', label]), []);
    assert.deepEqual(await docker(['volume', 'ls', '-q', '--filter', label]), []);
    assert.deepEqual(await docker(['network', 'ls', '-q', '--filter', label]), []);
    assert.deepEqual(await docker(['images', '-q', `${project}_daemon`]), []);
    // What the daemon made for its runs (containers, networks) is gone too; its images are content-tagged
    // caches (plan images, the sync service's) that the next deployment reuses.
    assert.ok(daemonId, 'the daemon logged its id');
    const made = `label=testground.daemon=${daemonId}`;
    const cleanupLines = daemonLog
      .split('\n')
      .filter((line) => /network|remov|cleanup/i.test(line) && /"level":(40|50)/.test(line))
      .join('\n');
    assert.deepEqual(await docker(['ps', '-aq', '--filter', made]), [], cleanupLines);
    assert.deepEqual(
      await docker(['network', 'ls', '--format', '{{.Name}}', '--filter', made]),
      [],
      `the runs' networks were left behind; the daemon's warnings about them:\n${cleanupLines}`,
    );
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
