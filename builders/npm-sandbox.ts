/**
 * `npm install` of a plan, as plan code: as the plan user (builders/plan-user.ts), with an environment that
 * holds none of the daemon's (a home and a temp directory of its own, a few npm settings copied over), and
 * with lifecycle scripts off unless the plan opts in (`npm_scripts = true` in its manifest's builder table
 * or a build_config).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { BuildError } from '../core/errors.ts';
import type { TaskLog } from '../core/task-log.ts';
import { PlanUser } from './plan-user.ts';

/**
 * The daemon's npm settings a plan install gets too: where packages come from and how to reach them, and
 * node-gyp's headers. Credentials (`//host/:_authToken`, `_auth`) are not among them.
 */
const passedSettings = [
  'registry',
  'nodedir',
  'cafile',
  'strict-ssl',
  'proxy',
  'https-proxy',
  'noproxy',
  'omit-lockfile-registry-resolved',
];
const scopedRegistry = /^@[^:/]+:registry$/;

/** The scripts npm runs for the plan's own package.json on install. */
const lifecycleScripts = ['preinstall', 'install', 'postinstall', 'preprepare', 'prepare', 'postprepare'];

export interface NpmSandboxOptions {
  planUser?: PlanUser;
  /**
   * The npm cache installs share when they run as the plan user (owned by that user). Default: each
   * install gets a cache of its own (everything is downloaded again). A daemon that is not root uses its own
   * npm cache, as its user's npm would.
   */
  cacheDir?: string;
}

export interface NpmInstallInput {
  /** The plan's copy, with its package.json; handed to the plan user for the install and taken back after. */
  dir: string;
  /** Receives the install's home, temp directory and (by default) cache; need not exist. */
  homeDir: string;
  /** Whether npm may run lifecycle scripts (the plan's own and its dependencies'). */
  scripts: boolean;
  log: TaskLog;
  signal: AbortSignal;
  builderId: string;
}

export class NpmSandbox {
  readonly planUser: PlanUser;
  private readonly cacheDir: string | undefined;
  private settings: Promise<Record<string, string>> | undefined;

  constructor(options: NpmSandboxOptions = {}) {
    this.planUser = options.planUser ?? new PlanUser(undefined);
    this.cacheDir = options.cacheDir;
  }

  async install(input: NpmInstallInput): Promise<void> {
    const { dir, homeDir, log, builderId, scripts } = input;
    const user = this.planUser;
    log.info(
      `${builderId}: installing the plan's npm dependencies${user.identity ? ` as ${user.identity.name}` : ''}` +
        (scripts ? ', lifecycle scripts on (npm_scripts = true)' : ''),
    );
    const settings = await this.daemonSettings();
    await mkdir(homeDir, { recursive: true });
    let cache = settings.cache;
    if (user.isolated) {
      cache = this.cacheDir ?? path.join(homeDir, '.npm');
      await user.ownedDirectory(cache);
      await user.reach(cache);
    }
    await user.handOver(homeDir);
    await user.reach(homeDir);
    await user.handOverTree(dir).catch((error: Error) => {
      throw new BuildError(`${builderId}: could not hand the plan to the plan user: ${error.message}`);
    });
    try {
      const env = user.environment({
        ...settingsAsEnvironment(settings),
        HOME: homeDir,
        TMPDIR: homeDir,
        ...(cache === undefined ? {} : { npm_config_cache: cache }),
        // The daemon user's own npmrc may hold registry credentials; the install gets none of its files.
        npm_config_userconfig: path.join(homeDir, '.npmrc'),
        npm_config_update_notifier: 'false',
      });
      const args = [
        'install',
        '--omit=dev',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--loglevel=error',
        // On the command line, so the plan's own .npmrc cannot turn scripts back on.
        ...(scripts ? [] : ['--ignore-scripts']),
      ];
      await runNpm(user.command(['npm', ...args]), dir, env, log, input.signal);
    } finally {
      await user.takeBackTree(dir).catch((error: Error) => {
        throw new BuildError(
          `${builderId}: could not take the plan back from the plan user: ${error.message}`,
        );
      });
    }
    if (!scripts) await reportSkippedScripts(dir, log, builderId);
  }

  /** Read once: `npm config list` costs a few hundred milliseconds. */
  private daemonSettings(): Promise<Record<string, string>> {
    this.settings ??= readNpmSettings();
    return this.settings;
  }
}

/** The settings this daemon's npm has (its user's npmrc included), filtered to {@link passedSettings}, and its cache. */
async function readNpmSettings(): Promise<Record<string, string>> {
  const output = await new Promise<string>((resolve) => {
    const child = spawn('npm', ['config', 'list', '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    child.once('error', () => resolve('{}'));
    child.once('close', () => resolve(text));
  });
  let all: Record<string, unknown>;
  try {
    all = JSON.parse(output) as Record<string, unknown>;
  } catch {
    return {};
  }
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(all)) {
    if (!(passedSettings.includes(key) || scopedRegistry.test(key) || key === 'cache')) continue;
    if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') {
      settings[key] = String(value);
    }
  }
  return settings;
}

function settingsAsEnvironment(settings: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(settings)
      .filter(([key]) => key !== 'cache')
      .map(([key, value]) => [
        `npm_config_${scopedRegistry.test(key) ? key : key.replaceAll('-', '_')}`,
        value,
      ]),
  );
}

function runNpm(
  argv: readonly string[],
  cwd: string,
  env: Record<string, string>,
  log: TaskLog,
  signal: AbortSignal,
): Promise<void> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    // Its own process group: whatever a script left running in the background is stopped with it.
    const child = spawn(file!, args, { cwd, env, signal, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const forward = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        log.info(`npm: ${line}`);
        tail.push(line);
        if (tail.length > 20) tail.shift();
      }
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    const stopGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Nothing left in it.
      }
    };
    child.once('error', (error) => {
      stopGroup();
      reject(new BuildError(`npm install could not run: ${error.message}`));
    });
    child.once('close', (code) => {
      stopGroup();
      if (code === 0) resolve();
      else
        reject(
          new BuildError(
            `npm install of the plan's dependencies exited with code ${code}: ${tail.join(' | ')}`,
          ),
        );
    });
  });
}

/** Scripts npm did not run because the plan did not opt in: said once, so a broken native addon is explained. */
async function reportSkippedScripts(dir: string, log: TaskLog, builderId: string): Promise<void> {
  const skipped: string[] = [];
  const own = await readJson(path.join(dir, 'package.json'));
  const ownScripts = (own?.scripts ?? {}) as Record<string, unknown>;
  for (const name of lifecycleScripts) {
    if (typeof ownScripts[name] === 'string') skipped.push(`the plan's ${name}`);
  }
  // npm records which installed packages have install scripts (node-gyp builds included).
  const installed = await readJson(path.join(dir, 'node_modules', '.package-lock.json'));
  const packages = (installed?.packages ?? {}) as Record<string, { hasInstallScript?: boolean }>;
  for (const [location, entry] of Object.entries(packages)) {
    if (entry.hasInstallScript) skipped.push(location.replace(/^.*node_modules\//, ''));
  }
  if (skipped.length === 0) return;
  log.warn(
    `${builderId}: npm lifecycle scripts are off, not run: ${skipped.join(', ')}; ` +
      `a plan that needs them sets npm_scripts = true in its manifest's [builders."${builderId}"] table ` +
      "(they then run as the unprivileged plan user, without the daemon's environment)",
  );
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
