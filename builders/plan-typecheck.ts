/**
 * `tsc --noEmit` on a TypeScript plan before it is bundled, so that a type error is refused at build with
 * the plan's file and line instead of surfacing at run time (esbuild only strips types). The plan's own
 * tsconfig.json is honoured when it has one; `testground-sdk` always resolves to the declarations of the SDK
 * the bundle will hold (whatever the plan installed), and a plan without `@types/node` gets the daemon's.
 * It runs as the plan user, like the install before it: a plan's tsconfig.json chooses which files tsc
 * reads.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BuildError } from '../core/errors.ts';
import type { TaskLog } from '../core/task-log.ts';
import { walkDir } from '../core/walk-dir.ts';
import { missingPackageHint } from './missing-package.ts';
import type { PlanUser } from './plan-user.ts';
import { nodeTypesDir, runTsc, type SdkTypes } from './sdk-types.ts';

/** The wrapper config written beside the plan's own for the check, and removed after it. */
export const typecheckConfigName = 'tsconfig.testground-typecheck.json';
/** Errors shown in full; the rest are counted. */
const shownErrors = 30;
const typeScriptFile = /\.(?:ts|mts|cts|tsx)$/;

/** What a plan without a tsconfig.json is checked with: what a bundler-run Node 20 plan means. */
const defaultCompilerOptions = {
  target: 'ES2023',
  lib: ['ES2023'],
  module: 'Preserve',
  moduleResolution: 'Bundler',
  allowImportingTsExtensions: true,
  resolveJsonModule: true,
  esModuleInterop: true,
  strict: true,
};

export interface PlanTypeCheckerOptions {
  sdkTypes: SdkTypes;
  /** Holds a types root with the daemon's `@types/node`, for plans without their own. */
  cacheDir: string;
}

export interface TypeCheckInput {
  /** The plan's copy, its npm dependencies installed. */
  dir: string;
  log: TaskLog;
  builderId: string;
  planUser: PlanUser;
  signal: AbortSignal;
}

export class PlanTypeChecker {
  private readonly options: PlanTypeCheckerOptions;

  constructor(options: PlanTypeCheckerOptions) {
    this.options = options;
  }

  /**
   * Type-checks the plan in `dir`; a plan without TypeScript files is left alone.
   *
   * @throws BuildError listing each error as `file:line:column error TSnnnn: message`, paths relative to
   *   the plan.
   */
  async check(input: TypeCheckInput): Promise<void> {
    const { dir, log, builderId } = input;
    const files = (await walkDir(dir)).filter(
      (entry) =>
        entry.kind === 'file' &&
        typeScriptFile.test(entry.name) &&
        !entry.name.endsWith('.d.ts') &&
        !entry.name.split('/').includes('node_modules'),
    );
    if (files.length === 0) return;
    const started = performance.now();
    const sdkEntry = await this.options.sdkTypes.entry();
    const typeRoots = [path.join(dir, 'node_modules/@types')];
    if (!existsSync(path.join(dir, 'node_modules/@types/node'))) typeRoots.push(await this.nodeTypesRoot());
    const own = path.join(dir, 'tsconfig.json');
    const hasOwn = existsSync(own);
    const ownOptions = hasOwn ? await ownCompilerOptions(own) : {};
    const config = {
      ...(hasOwn ? { extends: './tsconfig.json' } : {}),
      compilerOptions: {
        ...(hasOwn ? {} : defaultCompilerOptions),
        noEmit: true,
        // Errors inside declarations (ours, the plan's packages') are not the plan's to fix.
        skipLibCheck: true,
        incremental: false,
        composite: false,
        typeRoots,
        // TypeScript 6 includes no types package unless named: Node's are what every plan runs on.
        types: [...new Set([...(ownOptions.types ?? []), 'node'])],
        paths: { ...ownOptions.paths, 'testground-sdk': [sdkEntry] },
      },
      ...(hasOwn ? {} : { include: ['**/*'], exclude: ['node_modules'] }),
    };
    const wrapper = path.join(dir, typecheckConfigName);
    await writeFile(wrapper, JSON.stringify(config, null, 2));
    for (const reached of [sdkEntry, ...typeRoots.slice(1)]) await input.planUser.reach(reached);
    let result: { code: number; output: string };
    try {
      result = await runTsc(['-p', typecheckConfigName, '--pretty', 'false'], dir, {
        command: (argv) => input.planUser.command(argv),
        env: input.planUser.environment({ HOME: dir }),
        signal: input.signal,
      });
    } finally {
      await rm(wrapper, { force: true });
    }
    const seconds = ((performance.now() - started) / 1_000).toFixed(1);
    if (result.code === 0) {
      log.info(`${builderId}: type-checked ${files.length} TypeScript file(s) in ${seconds} s`);
      return;
    }
    const errors = parseTscOutput(result.output, dir);
    if (errors.length === 0) {
      throw new BuildError(`${builderId}: tsc failed (exit code ${result.code}): ${result.output.trim()}`);
    }
    // The build's error lists the first errors (the task log shows it); the log gets all of a long list.
    if (errors.length > shownErrors) for (const error of errors) log.error(`${builderId}: ${error}`);
    const listed = errors.slice(0, shownErrors).join('\n');
    const more = errors.length > shownErrors ? `\n… and ${errors.length - shownErrors} more` : '';
    // TS1xxx are the parser's: such a plan is not valid TypeScript at all, and skipping the check won't help.
    const syntax = errors.some((error) => / error TS1\d{3}: /.test(error));
    const count = `${errors.length} error${errors.length === 1 ? '' : 's'}`;
    throw new BuildError(
      syntax
        ? `${builderId}: the plan has syntax errors (${count}):\n${listed}${more}`
        : `${builderId}: the plan does not type-check (${count}; build_config.typecheck = false (--build-cfg typecheck=false) skips the check):\n${listed}${more}`,
    );
  }

  /** A types root holding only the daemon's `@types/node` (a types root brings in every package in it). */
  private async nodeTypesRoot(): Promise<string> {
    const root = path.join(this.options.cacheDir, 'type-roots');
    const link = path.join(root, 'node');
    if (!existsSync(link)) {
      await mkdir(root, { recursive: true });
      await symlink(nodeTypesDir(), link).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
    }
    return root;
  }
}

/**
 * The plan's own `compilerOptions.paths` and `types` (tsconfig.json allows comments and trailing commas),
 * which the check adds to rather than replaces. Those of a config it extends are not merged.
 */
async function ownCompilerOptions(
  file: string,
): Promise<{ paths?: Record<string, string[]>; types?: string[] }> {
  const ts = (await import('typescript')).default;
  const parsed = ts.parseConfigFileTextToJson(file, await readFile(file, 'utf8'));
  if (parsed.error) {
    const message = ts.flattenDiagnosticMessageText(parsed.error.messageText, ' ');
    throw new BuildError(`the plan's tsconfig.json is not valid: ${message}`);
  }
  const options = (parsed.config as { compilerOptions?: { paths?: unknown; types?: unknown } } | undefined)
    ?.compilerOptions;
  const paths = options?.paths;
  const types = options?.types;
  return {
    ...(typeof paths === 'object' && paths !== null ? { paths: paths as Record<string, string[]> } : {}),
    ...(Array.isArray(types)
      ? { types: types.filter((type): type is string => typeof type === 'string') }
      : {}),
  };
}

/**
 * tsc's `--pretty false` output (`index.ts(12,5): error TS2322: …`, continuation lines indented) as
 * `index.ts:12:5 error TS2322: …`, one entry per diagnostic, paths relative to the plan.
 */
export function parseTscOutput(output: string, planDir: string): string[] {
  const diagnostics: string[] = [];
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue;
    const located = /^(.+?)\((\d+),(\d+)\): (error|warning) (TS\d+): (.*)$/.exec(line);
    if (located) {
      const [, file, row, column, severity, code, message] = located;
      const relative = path.isAbsolute(file!) ? path.relative(planDir, file!) : file!;
      // TS2307 is tsc's "Cannot find module 'x'": for a package, the same hint as the bundler's.
      const missing = code === 'TS2307' ? /^Cannot find module '([^']+)'/.exec(message!)?.[1] : undefined;
      const hint = missing === undefined ? '' : missingPackageHint(missing);
      diagnostics.push(
        `${relative}:${row}:${column} ${severity} ${code}: ${hint ? message!.replace(/\.$/, '') : message}${hint}`,
      );
    } else if (/^(error|warning) TS\d+: /.test(line)) {
      diagnostics.push(line);
    } else if (diagnostics.length > 0 && /^\s/.test(line)) {
      diagnostics[diagnostics.length - 1] += `\n${line}`;
    }
  }
  return diagnostics;
}
