/**
 * The user plan code runs as on this host: npm installs (and the lifecycle scripts a plan opts into) and
 * local:exec instances. A daemon running as root hands that code to an unprivileged user through util-linux's
 * `setpriv` (new uid and gid, no supplementary groups, no capabilities, `no_new_privs`), so it can neither
 * read the daemon's `/proc/<pid>/environ` (REDIS_URL, tokens) nor write what root owns; a daemon that is not
 * root cannot switch users, and says so.
 *
 * Why a user and not a container: exec:node and local:exec must work on a host without a Docker engine, and
 * a container would also need an image carrying npm and the host's node; `setpriv` is in every Linux base
 * system, costs one exec, and the same wrapper serves builds and instances.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, chown, lchown, lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from '../core/errors.ts';
import { walkDir } from '../core/walk-dir.ts';

/** The only variables of the daemon's environment plan code receives; secrets never are among them. */
const passedVariables = ['PATH', 'LANG', 'LC_ALL', 'TZ'];

export interface PlanUserIdentity {
  uid: number;
  gid: number;
  /** As configured, for messages: `nobody` or `64000:64000`. */
  name: string;
}

/**
 * How plan code is started and which files it may reach. `identity` undefined: plan code runs as the
 * daemon's own user (the daemon is not root), with a scrubbed environment only.
 */
export class PlanUser {
  readonly identity: PlanUserIdentity | undefined;
  /** The directory (the daemon's home) inside which this may give others search permission. */
  private readonly root: string;
  private readonly onWarning: (message: string) => void;

  constructor(
    identity: PlanUserIdentity | undefined,
    options: { root?: string; onWarning?: (message: string) => void } = {},
  ) {
    this.identity = identity;
    this.root = path.resolve(options.root ?? '/');
    this.onWarning = options.onWarning ?? (() => undefined);
  }

  /**
   * `spec` is a user name from /etc/passwd, `uid` or `uid:gid`; default `nobody`. Only a root daemon
   * switches users; any other gets a PlanUser that runs plan code as itself.
   */
  static fromConfig(
    spec: string | undefined,
    options: { home: string; onWarning: (message: string) => void; daemonUid?: number },
  ): PlanUser {
    const { home, onWarning } = options;
    if ((options.daemonUid ?? process.getuid?.()) !== 0)
      return new PlanUser(undefined, { root: home, onWarning });
    return new PlanUser(resolvePlanUser(spec ?? 'nobody'), { root: home, onWarning });
  }

  /** True when plan code runs as a user of its own, unable to read the daemon's environment. */
  get isolated(): boolean {
    return this.identity !== undefined;
  }

  /** What the daemon logs at start and healthchecks report. */
  describe(): string {
    return this.identity
      ? `plan code (npm installs, lifecycle scripts, local:exec instances) runs as ${this.identity.name} (uid ${this.identity.uid}, gid ${this.identity.gid}) without capabilities`
      : 'plan code runs as the daemon\'s own user (the daemon is not root, so it cannot switch users): npm installs get a scrubbed environment, but local:exec instances can read this process\'s environment through /proc; run the daemon as root (it then uses TESTGROUND_PLAN_USER, default "nobody") or use local:docker';
  }

  /** `argv` run as the plan user: `setpriv … -- argv` when isolated, `argv` itself otherwise. */
  command(argv: readonly string[]): string[] {
    if (!this.identity) return [...argv];
    const { uid, gid } = this.identity;
    return [
      'setpriv',
      `--reuid=${uid}`,
      `--regid=${gid}`,
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
      ...argv,
    ];
  }

  /**
   * The environment plan code starts with: a few harmless variables of the daemon's (never its secrets),
   * then `extra`. An allowlist, so a secret added to the daemon's environment later is not passed either.
   */
  environment(extra: Record<string, string>): Record<string, string> {
    const passed = Object.fromEntries(
      passedVariables.flatMap((name) =>
        process.env[name] === undefined ? [] : [[name, process.env[name]!]],
      ),
    );
    return { ...passed, ...extra };
  }

  /** Gives `dir` (not what is in it) to the plan user, so its code can write there. */
  async handOver(dir: string): Promise<void> {
    if (!this.identity) return;
    await chown(dir, this.identity.uid, this.identity.gid);
  }

  /**
   * Gives `dir`, its directories and the files only it links to the plan user (symbolic links are not
   * followed). A file with other hard links is shared with the content store (builders/content-store.ts):
   * it stays the daemon's and read-only, so plan code cannot change what other tasks' snapshots hold.
   */
  async handOverTree(dir: string): Promise<void> {
    if (!this.identity) return;
    const { uid, gid } = this.identity;
    const entries = [{ absolute: dir }, ...(await walkDir(dir))];
    for (const { absolute } of entries) {
      const stats = await lstat(absolute);
      if (stats.isDirectory() || (stats.isFile() && stats.nlink === 1)) await lchown(absolute, uid, gid);
    }
  }

  /**
   * Takes `dir` back from the plan user: owned by the daemon again, readable by all and writable by
   * none but the daemon, so what a build produced cannot be changed by the plan code of a later run.
   */
  async takeBackTree(dir: string): Promise<void> {
    await this.takeBackTrees([dir]);
  }

  /** {@link takeBackTree} for several trees at the price of one `chown` and one `chmod` process. */
  async takeBackTrees(dirs: readonly string[]): Promise<void> {
    if (!this.identity || dirs.length === 0) return;
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    await runTool('chown', ['-R', '-P', '--no-dereference', `${uid}:${gid}`, '--', ...dirs]);
    await runTool('chmod', ['-R', 'a+rX,go-w', '--', ...dirs]);
  }

  /**
   * Lets the plan user reach `target` through its ancestors: each one without search permission for others
   * gets it (`o+x`, not read: names stay unlisted). Inside the root (the home) that is silent; above it only
   * directories this process owns are changed, each reported through `onWarning`, and any other is an error
   * naming it and the fix.
   */
  async reach(target: string): Promise<void> {
    if (!this.identity) return;
    let dir = path.resolve(target);
    for (;;) {
      const stats = await lstat(dir);
      if (stats.isDirectory() && (stats.mode & 0o001) === 0) {
        const inside = isWithin(dir, this.root);
        if (!inside && stats.uid !== process.getuid?.()) {
          throw new ValidationError(
            `the plan user ${this.identity.name} cannot reach ${target}: ${dir} has mode ${(stats.mode & 0o777).toString(8)} ` +
              `and belongs to uid ${stats.uid}; choose a home under a directory others may search (like /var/lib/testground), or chmod o+x ${dir}`,
          );
        }
        await chmod(dir, (stats.mode & 0o7777) | 0o001);
        if (!inside) {
          this.onWarning(
            `gave others search permission (o+x, not read) on ${dir} so that the plan user ${this.identity.name} can reach ${target}`,
          );
        }
      }
      const parent = path.dirname(dir);
      if (parent === dir) return;
      dir = parent;
    }
  }

  /** Takes every permission of others away from `dir` (plan snapshots, uploads, Redis's data and socket). */
  async keepPrivate(dir: string): Promise<void> {
    if (!this.identity) return;
    const stats = await lstat(dir);
    await chmod(dir, stats.mode & 0o7700);
  }

  /** A directory the plan user owns (created when missing), like a shared npm cache. */
  async ownedDirectory(dir: string): Promise<string> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await this.handOver(dir);
    return dir;
  }
}

/** `nobody`, `65534` or `65534:65534` → uid and gid; a name must be in /etc/passwd. */
export function resolvePlanUser(spec: string, passwd = readPasswd()): PlanUserIdentity {
  const numeric = /^(?<uid>\d+)(?::(?<gid>\d+))?$/.exec(spec);
  if (numeric?.groups) {
    const uid = Number(numeric.groups.uid);
    const gid = numeric.groups.gid === undefined ? uid : Number(numeric.groups.gid);
    if (uid === 0 || gid === 0) {
      throw new ValidationError(
        `TESTGROUND_PLAN_USER ${JSON.stringify(spec)}: plan code must not run as root (uid or gid 0); name an unprivileged user`,
      );
    }
    return { uid, gid, name: spec };
  }
  const entry = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === spec);
  if (!entry) {
    throw new ValidationError(
      `TESTGROUND_PLAN_USER ${JSON.stringify(spec)} is not a user of this host (/etc/passwd); give a user name, "uid" or "uid:gid"`,
    );
  }
  const uid = Number(entry[2]);
  const gid = Number(entry[3]);
  if (uid === 0 || gid === 0) {
    throw new ValidationError(
      `TESTGROUND_PLAN_USER ${JSON.stringify(spec)} is root (uid or gid 0); name an unprivileged user`,
    );
  }
  return { uid, gid, name: spec };
}

function isWithin(dir: string, root: string): boolean {
  return root === path.sep || dir === root || dir.startsWith(root + path.sep);
}

function readPasswd(): string {
  try {
    return readFileSync('/etc/passwd', 'utf8');
  } catch {
    return '';
  }
}

function runTool(file: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => reject(new Error(`${file} could not start: ${error.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.join(' ')} exited with code ${code}: ${stderr.trim()}`));
    });
  });
}
