import { existsSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { TokenSource } from '../api/auth.ts';
import { ValidationError } from '../core/errors.ts';
import { hashToken, parseTokenFile, type TokenEntry } from '../core/token-file.ts';

export interface TokenRegistryOptions {
  /** The tokens file (`sha256:<hex> <user> <role>` lines). */
  file: string;
  /** Given explicitly (--tokens-file / TESTGROUND_TOKENS_FILE): then it must exist at start. */
  required: boolean;
  /** TESTGROUND_TOKEN / a single `--token`: one more token, of user `admin` with role admin. */
  legacyToken?: string;
  logger: Logger;
  /** How often the file is checked for changes; 2 s unless given. */
  pollMs?: number;
}

/** The user a single TESTGROUND_TOKEN authenticates as. */
export const legacyTokenUser = 'admin';

/**
 * The tokens the daemon accepts: the tokens file's entries and the legacy TESTGROUND_TOKEN. The file is
 * re-read when it changes, so adding or revoking a token needs no restart; a change that does not parse
 * is logged and the previous entries stay.
 */
export class TokenRegistry implements TokenSource {
  private readonly options: TokenRegistryOptions;
  private readonly legacy: TokenEntry[];
  private fromFile: TokenEntry[];
  private watching = false;

  private constructor(options: TokenRegistryOptions, fromFile: TokenEntry[]) {
    this.options = options;
    this.legacy = options.legacyToken
      ? [{ hash: hashToken(options.legacyToken), user: legacyTokenUser, role: 'admin' }]
      : [];
    this.fromFile = fromFile;
  }

  /**
   * The registry, or undefined when there is nothing to authenticate with (no file, no legacy token):
   * the daemon then trusts its network, which it allows on loopback only.
   *
   * @throws ValidationError when a required file is missing or the file does not parse, naming the line.
   */
  static async open(options: TokenRegistryOptions): Promise<TokenRegistry | undefined> {
    const exists = existsSync(options.file);
    if (!exists && options.required) {
      throw new ValidationError(
        `tokens file ${options.file} (--tokens-file / TESTGROUND_TOKENS_FILE) does not exist; create it with "testground token add <user> --role admin --file ${options.file}"`,
        [{ path: 'TESTGROUND_TOKENS_FILE', message: `${JSON.stringify(options.file)} does not exist` }],
      );
    }
    if (!exists && !options.legacyToken) return undefined;
    const entries = exists ? parseTokenFile(await readFile(options.file, 'utf8'), options.file) : [];
    const registry = new TokenRegistry(options, entries);
    registry.watch();
    return registry;
  }

  entries(): readonly TokenEntry[] {
    return this.fromFile.length === 0 ? this.legacy : [...this.fromFile, ...this.legacy];
  }

  /** For the start-up log: where the tokens come from, never the tokens. */
  describe(): { file: string; tokens: number; users: string[]; legacyToken: boolean } {
    return {
      file: this.options.file,
      tokens: this.fromFile.length,
      users: [...new Set(this.fromFile.map((entry) => entry.user))],
      legacyToken: this.legacy.length > 0,
    };
  }

  close(): void {
    if (!this.watching) return;
    this.watching = false;
    unwatchFile(this.options.file);
  }

  /** Re-reads the file now (the watcher calls it on every change). */
  async reload(): Promise<void> {
    const { file, logger } = this.options;
    if (!existsSync(file)) {
      this.fromFile = [];
      logger.warn(
        { file },
        'tokens file removed: its tokens no longer authenticate' +
          (this.legacy.length > 0 ? ' (TESTGROUND_TOKEN still does)' : ''),
      );
      return;
    }
    try {
      this.fromFile = parseTokenFile(await readFile(file, 'utf8'), file);
      logger.info({ file, tokens: this.fromFile.length }, 'tokens file reloaded');
    } catch (error) {
      logger.error({ err: error, file }, 'tokens file changed but cannot be used; the previous tokens stay');
    }
  }

  private watch(): void {
    // Polling, not fs.watch: it sees a file replaced by a rename (editors, `mv`) and a file that appears.
    watchFile(
      this.options.file,
      { interval: this.options.pollMs ?? 2_000, persistent: false },
      (current: Stats, previous: Stats) => {
        if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino) return;
        void this.reload();
      },
    );
    this.watching = true;
  }
}
