import assert from 'node:assert/strict';
import { appendFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { matchToken } from '../../api/auth.ts';
import { formatTokenEntry, hashToken, newToken } from '../../core/token-file.ts';
import { legacyTokenUser, TokenRegistry } from '../../daemon/token-registry.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { scratchDir, waitFor } from '../helpers/processes.ts';

const line = (token: string, user: string, role: 'admin' | 'user' | 'viewer'): string =>
  `${formatTokenEntry({ hash: hashToken(token), user, role })}\n`;

describe('TokenRegistry', () => {
  it('is absent without a file or a legacy token, and refuses a missing file that was asked for', async (t) => {
    const scratch = await scratchDir('tokens');
    t.after(scratch.remove);
    const file = path.join(scratch.dir, 'tokens');
    const { logger } = memoryLogger();
    assert.equal(await TokenRegistry.open({ file, required: false, logger }), undefined);
    await assert.rejects(TokenRegistry.open({ file, required: true, logger }), (error: Error) => {
      assert.match(
        error.message,
        /tokens file .*tokens \(--tokens-file \/ TESTGROUND_TOKENS_FILE\) does not exist; create it with "testground token add/,
      );
      return true;
    });
  });

  it('takes the legacy token as an admin of user "admin", beside the file', async (t) => {
    const scratch = await scratchDir('tokens');
    t.after(scratch.remove);
    const file = path.join(scratch.dir, 'tokens');
    const bobs = newToken();
    await writeFile(file, `# the team\n${line(bobs, 'bob', 'user')}`);
    const registry = await TokenRegistry.open({
      file,
      required: true,
      legacyToken: 'legacy-token-123',
      logger: memoryLogger().logger,
    });
    t.after(() => registry?.close());
    assert.ok(registry);
    assert.deepEqual(matchToken(registry.entries(), 'legacy-token-123'), {
      hash: hashToken('legacy-token-123'),
      user: legacyTokenUser,
      role: 'admin',
    });
    assert.equal(matchToken(registry.entries(), bobs)?.user, 'bob');
    assert.deepEqual(registry.describe(), { file, tokens: 1, users: ['bob'], legacyToken: true });
    assert.doesNotMatch(JSON.stringify(registry.describe()), new RegExp(bobs), 'never the token itself');
  });

  it('refuses a malformed file at start, naming the line', async (t) => {
    const scratch = await scratchDir('tokens');
    t.after(scratch.remove);
    const file = path.join(scratch.dir, 'tokens');
    await writeFile(file, `${line(newToken(), 'bob', 'user')}\nsha256:1234 carol boss\n`);
    await assert.rejects(
      TokenRegistry.open({ file, required: true, logger: memoryLogger().logger }),
      (error: Error & { details: { path: string; message: string }[] }) => {
        assert.equal(error.details[0]?.path, `${file}:3`);
        assert.match(
          error.details[0]!.message,
          /"sha256:1234" is not "sha256:" and 64 lower-case hex digits; role "boss" is not one of admin, user, viewer/,
        );
        return true;
      },
    );
  });

  it('follows the file: added tokens work, revoked ones stop, a broken edit keeps the previous tokens', async (t) => {
    const scratch = await scratchDir('tokens');
    t.after(scratch.remove);
    const file = path.join(scratch.dir, 'tokens');
    const bobs = newToken();
    const carols = newToken();
    await writeFile(file, line(bobs, 'bob', 'user'));
    const logged = memoryLogger();
    const registry = await TokenRegistry.open({ file, required: true, logger: logged.logger, pollMs: 50 });
    assert.ok(registry);
    t.after(() => registry.close());

    await appendFile(file, line(carols, 'carol', 'viewer'));
    await waitFor("carol's token to be accepted", async () => matchToken(registry.entries(), carols), 5_000);
    assert.equal(matchToken(registry.entries(), carols)?.role, 'viewer');

    await writeFile(file, `${line(carols, 'carol', 'viewer')}not a token line\n`);
    await waitFor(
      'the broken edit to be logged',
      async () =>
        logged.atLevel('error').find((entry) => /cannot be used; the previous tokens stay/.test(entry.msg)),
      5_000,
    );
    assert.equal(matchToken(registry.entries(), bobs)?.user, 'bob', 'the previous tokens stay');

    await writeFile(file, line(carols, 'carol', 'viewer'));
    await waitFor(
      "bob's token to be revoked",
      async () => (matchToken(registry.entries(), bobs) === undefined ? true : undefined),
      5_000,
    );

    await rm(file);
    await waitFor(
      'every token of the removed file to stop',
      async () => (registry.entries().length === 0 ? true : undefined),
      5_000,
    );
  });
});
