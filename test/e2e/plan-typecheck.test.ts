/**
 * Through the real CLI and a real daemon process (root: the check runs as the plan user): a plan with a type
 * error is refused at build, the error naming the plan's own file and line (never the daemon's cache), and
 * `--build-config typecheck=false` builds it anyway.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, scratchDir, startDaemonProcess, type DaemonProcess } from '../helpers/processes.ts';

const manifest = `name = "typo"

[defaults]
builder = "exec:node"
runner = "local:exec"

[builders."exec:node"]
enabled = true

[runners."local:exec"]
enabled = true

[[testcases]]
name = "ok"
instances = { min = 1, max = 1, default = 1 }
`;

const plan = `import { invokeMap, type RunEnv } from 'testground-sdk';

const attempts: number = 'three';
await invokeMap({ ok: (runenv: RunEnv) => runenv.recordMessage(\`attempts: \${attempts}\`) });
`;

describe('a plan with a type error, through the CLI and the daemon', () => {
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let planDir: string;
  before(async () => {
    scratch = await scratchDir('plan-typecheck-e2e');
    planDir = path.join(scratch.dir, 'typo');
    await mkdir(planDir, { recursive: true });
    await writeFile(path.join(planDir, 'manifest.toml'), manifest);
    await writeFile(path.join(planDir, 'index.ts'), plan);
    await writeFile(
      path.join(planDir, 'package.json'),
      JSON.stringify({ name: 'typo', private: true, type: 'module', main: 'index.ts' }),
    );
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  const testground = (...args: string[]) => runCli(['--endpoint', daemon.url, ...args], { cwd: scratch.dir });

  it("is refused at build with the plan's file and line", async () => {
    const built = await testground('build', 'single', '-p', planDir);
    const said = `${built.stdout}\n${built.stderr}`;
    assert.equal(built.code, 3, `a task that ended in error: exit 3\n${said}`);
    assert.ok(
      said.includes("index.ts:3:7 error TS2322: Type 'string' is not assignable to type 'number'."),
      said,
    );
    assert.ok(
      said.includes('build_config.typecheck = false (--build-cfg typecheck=false) skips the check'),
      said,
    );
    assert.ok(!said.includes(path.join(scratch.dir, 'home')), `no path of the daemon's home:\n${said}`);
  });

  it('builds when the composition opts out with typecheck=false', async () => {
    const built = await testground('build', 'single', '-p', planDir, '--build-config', 'typecheck=false');
    assert.equal(built.code, 0, `${built.stdout}\n${built.stderr}`);
  });
});
