/**
 * The SDK as a package: `npm pack` of sdk/ works offline and leaves no build output behind; a plan outside
 * this repository with the packed SDK installed type-checks with plain tsc (its types are real: a misuse is
 * an error), and the builder still bundles the daemon's SDK rather than the one the plan installed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

const execFileAsync = promisify(execFile);
const offline = {
  ...process.env,
  npm_config_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
};

let scratch: Awaited<ReturnType<typeof scratchDir>>;
let tarball: string;
let planDir: string;

before(async () => {
  scratch = await scratchDir('sdk-package');
  await execFileAsync('npm', ['pack', '--pack-destination', scratch.dir], {
    cwd: path.join(repoRoot, 'sdk'),
    env: offline,
  });
  const packed = readdirSync(scratch.dir).filter((name) => name.endsWith('.tgz'));
  assert.deepEqual(packed, ['testground-sdk-0.1.0.tgz']);
  tarball = path.join(scratch.dir, packed[0]!);
  planDir = path.join(scratch.dir, 'outside-plan');
  await execFileAsync('mkdir', ['-p', planDir]);
  await writeFile(
    path.join(planDir, 'package.json'),
    JSON.stringify({
      name: 'outside',
      private: true,
      type: 'module',
      main: 'index.ts',
      dependencies: { 'testground-sdk': `file:${tarball}` },
    }),
  );
  await writeFile(path.join(planDir, 'manifest.toml'), 'name = "outside"\n');
  await writeFile(
    path.join(planDir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        lib: ['ES2023'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        allowImportingTsExtensions: true,
        // @types/node from this repository's install: the plan's own npm install stays offline.
        typeRoots: [path.join(repoRoot, 'node_modules/@types')],
        types: ['node'],
      },
      include: ['*.ts'],
    }),
  );
  await execFileAsync('npm', ['install'], { cwd: planDir, env: offline });
});

after(async () => {
  await scratch?.remove();
});

async function tsc(): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await execFileAsync(
      process.execPath,
      [path.join(repoRoot, 'node_modules/typescript/lib/tsc.js'), '-p', planDir, '--pretty', 'false'],
      { cwd: planDir },
    );
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string };
    return { code: failed.code, output: failed.stdout };
  }
}

const goodPlan = `import { invokeMap, type RunEnv, type SyncClientApi } from 'testground-sdk';

await invokeMap({
  ok: async (runenv: RunEnv, client: SyncClientApi) => {
    const seq: number = await client.signalEntry('ready');
    runenv.recordMessage(\`seq \${seq} of \${runenv.testInstanceCount}\`);
  },
});
`;

describe('the packed SDK', () => {
  it('packs offline without leaving sdk/dist behind, with declarations and one bundled module', async () => {
    assert.ok(!existsSync(path.join(repoRoot, 'sdk/dist')), 'postpack removed the build output');
    const installed = path.join(planDir, 'node_modules/testground-sdk');
    assert.ok(existsSync(path.join(installed, 'dist/index.js')));
    assert.ok(existsSync(path.join(installed, 'dist/types/sdk/index.d.ts')));
    assert.ok(!existsSync(path.join(installed, 'index.ts')), 'sources are not shipped');
  });

  it('type-checks a plan outside the repository with plain tsc, and refuses a misuse', async () => {
    await writeFile(path.join(planDir, 'index.ts'), goodPlan);
    const good = await tsc();
    assert.equal(good.code, 0, good.output);

    await writeFile(
      path.join(planDir, 'index.ts'),
      goodPlan.replace('`seq ${seq} of ${runenv.testInstanceCount}`', 'seq'),
    );
    const bad = await tsc();
    assert.equal(bad.code, 2, bad.output);
    assert.match(
      bad.output,
      /index\.ts\(6,26\): error TS2345: Argument of type 'number' is not assignable to parameter of type 'string'\./,
    );
  });

  it("builds with the daemon's SDK, not the installed one", async () => {
    await writeFile(path.join(planDir, 'index.ts'), goodPlan);
    const builder = new ExecNodeBuilder({
      cacheDir: path.join(scratch.dir, 'cache'),
      sdkEntry: path.join(repoRoot, 'sdk/index.ts'),
    });
    const log = new MemoryTaskLog();
    const artifact = await builder.build({
      planDir,
      planName: 'outside',
      buildConfig: {},
      log,
      signal: AbortSignal.timeout(120_000),
    });
    assert.equal(artifact.kind, 'bundle');
    assert.ok(
      !/loaded from node_modules beside the bundle at run time: .*testground-sdk/.test(log.text()),
      log.text(),
    );
  });
});
