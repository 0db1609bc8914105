import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  formatTokenEntry,
  hashToken,
  newToken,
  parseTokenFile,
  roles,
  userNamePattern,
  type Role,
} from '../../core/token-file.ts';
import { exitCodes } from '../exit-codes.ts';
import { printJson } from '../json-output.ts';
import type { TokenListView } from '../json-views.ts';
import type { Output } from '../task-printer.ts';

/** The daemon's default: `<home>/tokens`, home being TESTGROUND_HOME or ~/.testground. */
export function defaultTokensFile(env: NodeJS.ProcessEnv): string {
  if (env.TESTGROUND_TOKENS_FILE) return path.resolve(env.TESTGROUND_TOKENS_FILE);
  return path.join(path.resolve(env.TESTGROUND_HOME ?? path.join(os.homedir(), '.testground')), 'tokens');
}

/**
 * Makes a token for `user` with `role`, appends its hash to the tokens file (created owner-only) and
 * prints the token once, on stdout alone so a script can capture it. A running daemon picks the new
 * line up within seconds.
 */
export async function addToken(
  options: { file: string; user: string; role: string },
  output: Output,
): Promise<number> {
  const problem = checkUserAndRole(options.user, options.role);
  if (problem) {
    output.err(`error: ${problem}`);
    return exitCodes.rejected;
  }
  // A file the daemon would refuse is not made worse: say so before appending to it.
  if (existsSync(options.file)) parseTokenFile(await readFile(options.file, 'utf8'), options.file);
  else await mkdir(path.dirname(options.file), { recursive: true });
  const token = newToken();
  const line = formatTokenEntry({ hash: hashToken(token), user: options.user, role: options.role as Role });
  await appendFile(options.file, `${line}\n`, { mode: 0o600 });
  await chmod(options.file, 0o600);
  output.err(
    `added a ${options.role} token for ${options.user} to ${options.file}; it is shown only now, ` +
      'pass it as --token or TESTGROUND_TOKEN:',
  );
  output.out(token);
  return exitCodes.success;
}

/** Lists who has tokens, with the start of each hash to tell them apart (never a token). */
export async function listTokens(file: string, output: Output, json = false): Promise<number> {
  if (!existsSync(file)) {
    output.err(`error: no tokens file at ${file}; "testground token add" creates it`);
    return exitCodes.rejected;
  }
  const entries = parseTokenFile(await readFile(file, 'utf8'), file);
  if (json) {
    const tokens: TokenListView['tokens'] = entries.map((entry) => ({
      user: entry.user,
      role: entry.role,
      hash: entry.hash,
    }));
    printJson({ file, tokens }, output);
    return exitCodes.success;
  }
  for (const entry of entries)
    output.out(`${entry.user}\t${entry.role}\t${entry.hash.slice(0, 'sha256:'.length + 12)}…`);
  return exitCodes.success;
}

/** Removes every token of `user`; a running daemon stops accepting them within seconds. */
export async function revokeTokens(options: { file: string; user: string }, output: Output): Promise<number> {
  if (!existsSync(options.file)) {
    output.err(`error: no tokens file at ${options.file}`);
    return exitCodes.rejected;
  }
  const text = await readFile(options.file, 'utf8');
  parseTokenFile(text, options.file);
  // Line by line, so comments and the order of the other lines stay as they were.
  const lines = text.split(/\r?\n/);
  const kept = lines.filter((line) => line.replace(/#.*$/, '').trim().split(/\s+/)[1] !== options.user);
  const revoked = lines.length - kept.length;
  if (revoked === 0) {
    output.err(`error: ${options.file} has no token of user ${JSON.stringify(options.user)}`);
    return exitCodes.rejected;
  }
  await writeFile(options.file, kept.join('\n'), { mode: 0o600 });
  output.err(`revoked ${revoked} token(s) of ${options.user} in ${options.file}`);
  return exitCodes.success;
}

function checkUserAndRole(user: string, role: string): string | undefined {
  if (!userNamePattern.test(user))
    return `user ${JSON.stringify(user)}: use 1 to 64 letters, digits, "_", ".", "@" or "-"`;
  if (!(roles as readonly string[]).includes(role))
    return `--role ${JSON.stringify(role)}: one of ${roles.join(', ')}`;
  return undefined;
}
