/**
 * The daemon's tokens file: who may use the API, and as what. One token per line,
 *
 *     sha256:<64 hex digits of the token's SHA-256>  <user>  <role>
 *
 * with `#` comments and blank lines ignored. Only the hash is stored, so the file can be read (and
 * backed up) without giving anyone a token; `testground token add` makes a token and appends its line.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ValidationError, type ProblemDetail } from './errors.ts';

/** `admin`: everything; `user`: submit, read, cancel their own tasks; `viewer`: read only. */
export const roles = ['admin', 'user', 'viewer'] as const;
export type Role = (typeof roles)[number];

export interface TokenEntry {
  /** `sha256:` and the hex digest of the token. */
  hash: string;
  user: string;
  role: Role;
}

/** Shown on tasks and in logs, so kept to what needs no quoting anywhere. */
export const userNamePattern = /^[\w.@-]{1,64}$/;
const hashPattern = /^sha256:[0-9a-f]{64}$/;

/**
 * The stored form of a token. A plain SHA-256 (no salt, no stretching) is enough because tokens are 256
 * random bits (`newToken`): there is nothing to guess that a slow hash would protect.
 */
export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/** 32 random bytes, base64url, with a prefix that makes a leaked token easy to recognise in a scan. */
export function newToken(): string {
  return `tg_${randomBytes(32).toString('base64url')}`;
}

export function formatTokenEntry(entry: TokenEntry): string {
  return `${entry.hash} ${entry.user} ${entry.role}`;
}

/**
 * Parses a tokens file; every bad line is reported at once, named `<source>:<line>`.
 *
 * @throws ValidationError listing each line that is not `sha256:<hex> <user> <role>`, and repeated hashes.
 */
export function parseTokenFile(text: string, source: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const problems: ProblemDetail[] = [];
  const lineOfHash = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const where = `${source}:${index + 1}`;
    const fields = line.split(/\s+/);
    const [hash = '', user = '', role = ''] = fields;
    const wrong: string[] = [];
    if (fields.length !== 3) wrong.push(`expected 3 fields, found ${fields.length}`);
    if (!hashPattern.test(hash))
      wrong.push(`${JSON.stringify(hash)} is not "sha256:" and 64 lower-case hex digits`);
    if (!userNamePattern.test(user))
      wrong.push(`user ${JSON.stringify(user)} is not 1 to 64 letters, digits, "_", ".", "@" or "-"`);
    if (!(roles as readonly string[]).includes(role))
      wrong.push(`role ${JSON.stringify(role)} is not one of ${roles.join(', ')}`);
    const earlier = lineOfHash.get(hash);
    if (earlier !== undefined) wrong.push(`the same token hash as line ${earlier}`);
    if (wrong.length > 0) {
      problems.push({
        path: where,
        message: `${wrong.join('; ')}; lines are "sha256:<hex> <user> <role>" (testground token add writes them)`,
      });
      return;
    }
    lineOfHash.set(hash, index + 1);
    entries.push({ hash, user, role: role as Role });
  });
  if (problems.length > 0) {
    throw new ValidationError(
      `tokens file ${source}: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`,
      problems,
    );
  }
  return entries;
}
