/**
 * TypeScript plans are type-checked before they are bundled (exec:node here; docker:node shares the step):
 * a type error is refused with the plan's own file and line, `build_config.typecheck = false` skips the
 * check, a plan's own tsconfig.json is honoured, `testground-sdk` has its types without any install, and
 * every TypeScript plan of this repository and of the test fixtures passes.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import { PlanTypeChecker, parseTscOutput } from '../../builders/plan-typecheck.ts';
import { PlanUser } from '../../builders/plan-user.ts';
import { SdkTypes } from '../../builders/sdk-types.ts';
import { BuildError } from '../../core/errors.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

let scratch: Awaited<ReturnType<typeof scratchDir>>;
let checker: PlanTypeChecker;
let builder: ExecNodeBuilder;

before(async () => {
  scratch = await scratchDir('plan-typecheck');
  checker = new PlanTypeChecker({
    sdkTypes: new SdkTypes(path.join(repoRoot, 'sdk/index.ts'), path.join(scratch.dir, 'sdk-types')),
    cacheDir: path.join(scratch.dir, 'typecheck'),
  });
  builder = new ExecNodeBuilder({
    cacheDir: path.join(scratch.dir, 'cache'),
    sdkEntry: path.join(repoRoot, 'sdk/index.ts'),
    typecheck: checker,
  });
});

after(async () => {
  await scratch?.remove();
});

async function plan(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(scratch.dir, 'plans', name);
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
  return dir;
}

async function build(
  planDir: string,
  buildConfig: Record<string, unknown> = {},
): Promise<{ error?: string; log: MemoryTaskLog }> {
  const log = new MemoryTaskLog();
  try {
    await builder.build({ planDir, planName: 'p', buildConfig, log, signal: AbortSignal.timeout(120_000) });
    return { log };
  } catch (error) {
    assert.ok(error instanceof BuildError, String(error));
    return { error: error.message, log };
  }
}

const sdkImport = "import { invokeMap, type RunEnv } from 'testground-sdk';\n";

describe('type-checking TypeScript plans before bundling', { concurrency: true }, () => {
  it("refuses a type error, naming the plan's own file, line and column", async () => {
    const dir = await plan('type-error', {
      'index.ts': `${sdkImport}import { twice } from './lib/math.ts';\nawait invokeMap({ ok: (runenv: RunEnv) => runenv.recordMessage(twice('2')) });\n`,
      'lib/math.ts':
        'export function twice(n: number): string {\n  const doubled: number = `${n * 2}`;\n  return String(doubled);\n}\n',
    });
    const { error, log } = await build(dir);
    assert.equal(
      error,
      'exec:node: the plan does not type-check (2 errors; build_config.typecheck = false (--build-cfg typecheck=false) skips the check):\n' +
        "index.ts:3:70 error TS2345: Argument of type 'string' is not assignable to parameter of type 'number'.\n" +
        "lib/math.ts:2:9 error TS2322: Type 'string' is not assignable to type 'number'.",
    );
    assert.ok(
      !log.lines.some((line) => line.startsWith('ERROR')),
      `the errors are said once, by the build's error, not also line by line: ${log.text()}`,
    );
  });

  it('checks the use of testground-sdk against its types, with none installed', async () => {
    const dir = await plan('sdk-misuse', {
      'index.ts': `${sdkImport}await invokeMap({ ok: (runenv: RunEnv) => runenv.recordMessage(42) });\n`,
    });
    const { error } = await build(dir);
    assert.match(
      error ?? '',
      /\nindex\.ts:2:64 error TS2345: Argument of type 'number' is not assignable to parameter of type 'string'\.$/,
    );
  });

  it('refuses a syntax error with the plan path, called a syntax error (the check is said before esbuild)', async () => {
    const dir = await plan('syntax', {
      'index.ts': 'const answer: number = ;\n',
    });
    const { error } = await build(dir);
    assert.equal(
      error,
      'exec:node: the plan has syntax errors (1 error):\nindex.ts:1:24 error TS1109: Expression expected.',
    );
  });

  it('builds a plan with a type error when build_config.typecheck = false', async () => {
    const dir = await plan('opted-out', {
      'index.ts': `${sdkImport}const count: number = 'three';\nawait invokeMap({ ok: (runenv: RunEnv) => runenv.recordMessage(String(count)) });\n`,
    });
    const { error, log } = await build(dir, { typecheck: false });
    assert.equal(error, undefined, log.text());
    assert.ok(!log.text().includes('type-checked'), log.text());
  });

  it("honours the plan's own tsconfig.json, and says how long the check took", async () => {
    // Not strict: an implicit any is fine by this plan's own rules, and the check keeps to them.
    const dir = await plan('own-tsconfig', {
      'tsconfig.json':
        '{\n  // comments are allowed\n  "compilerOptions": { "strict": false, "module": "NodeNext", "target": "ES2022", "allowImportingTsExtensions": true, "noEmit": true, },\n}\n',
      'package.json': '{ "name": "own", "type": "module", "main": "index.ts" }\n',
      'index.ts': `${sdkImport}function echo(value) { return value; }\nawait invokeMap({ ok: (runenv: RunEnv) => runenv.recordMessage(echo('hi')) });\n`,
    });
    const { error, log } = await build(dir);
    assert.equal(error, undefined, log.text());
    assert.match(log.text(), /exec:node: type-checked 1 TypeScript file\(s\) in \d+\.\d s/);
    assert.ok(
      !existsSync(path.join(dir, 'tsconfig.testground-typecheck.json')),
      'the plan directory is left alone',
    );
  });

  it('passes every TypeScript plan of this repository and of the test fixtures', async () => {
    const dirs = ['plans', 'test/fixtures/plans'].flatMap((parent) =>
      readdirSync(path.join(repoRoot, parent), { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => path.join(repoRoot, parent, entry.name)),
    );
    const failures: string[] = [];
    let checked = 0;
    for (const dir of dirs) {
      const log = new MemoryTaskLog();
      try {
        await checker.check({
          dir,
          log,
          builderId: 'exec:node',
          planUser: new PlanUser(undefined),
          signal: AbortSignal.timeout(60_000),
        });
        if (log.text().includes('type-checked')) checked += 1;
      } catch (error) {
        failures.push(`${path.relative(repoRoot, dir)}: ${(error as Error).message}`);
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(checked >= 10, `${checked} plans had TypeScript files`);
  });
});

describe('parseTscOutput', () => {
  it("turns tsc's lines into file:line:column entries relative to the plan, continuations kept", () => {
    const output = [
      "index.ts(12,5): error TS2322: Type 'string' is not assignable to type 'number'.",
      "/plan/lib/a.ts(1,1): error TS2345: Argument of type '{ a: string; }' is not assignable.",
      "  Types of property 'a' are incompatible.",
      "error TS5083: Cannot read file '/plan/base.json'.",
      '',
    ].join('\n');
    assert.deepEqual(parseTscOutput(output, '/plan'), [
      "index.ts:12:5 error TS2322: Type 'string' is not assignable to type 'number'.",
      "lib/a.ts:1:1 error TS2345: Argument of type '{ a: string; }' is not assignable.\n  Types of property 'a' are incompatible.",
      "error TS5083: Cannot read file '/plan/base.json'.",
    ]);
  });

  it('says to add a package tsc cannot find to package.json, and nothing for a missing file of the plan', () => {
    const output = [
      "index.ts(1,20): error TS2307: Cannot find module 'left-pad' or its corresponding type declarations.",
      "index.ts(2,20): error TS2307: Cannot find module '@scope/lib/sub' or its corresponding type declarations.",
      "index.ts(3,20): error TS2307: Cannot find module './missing.ts' or its corresponding type declarations.",
    ].join('\n');
    assert.deepEqual(parseTscOutput(output, '/plan'), [
      `index.ts:1:20 error TS2307: Cannot find module 'left-pad' or its corresponding type declarations: add "left-pad" to the plan's package.json dependencies`,
      `index.ts:2:20 error TS2307: Cannot find module '@scope/lib/sub' or its corresponding type declarations: add "@scope/lib" to the plan's package.json dependencies`,
      "index.ts:3:20 error TS2307: Cannot find module './missing.ts' or its corresponding type declarations.",
    ]);
  });
});
