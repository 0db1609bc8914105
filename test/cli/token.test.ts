import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { matchToken } from '../../api/auth.ts';
import { parseTokenFile } from '../../core/token-file.ts';
import { tokenListSchema } from '../../cli/json-views.ts';
import { runCli as runTestground } from '../../cli/main.ts';
import { scratchDir } from '../helpers/processes.ts';

const noServers = {
  runDaemon: async () => {
    throw new Error('not used');
  },
  runSyncService: async () => {
    throw new Error('not used');
  },
};

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runTestground(['node', 'testground', ...args], noServers, {
    out: (text) => out.push(text),
    err: (text) => err.push(text),
  });
  return { code, out, err };
}

describe('testground token', () => {
  it('adds a token: prints it once, stores only its hash, owner-only', async (t) => {
    const scratch = await scratchDir('token-cli');
    t.after(scratch.remove);
    const file = path.join(scratch.dir, 'home', 'tokens');
    const added = await cli(['token', 'add', 'bob', '--role', 'user', '--file', file]);
    assert.equal(added.code, 0, added.err.join('\n'));
    assert.equal(added.out.length, 1, 'stdout holds the token alone');
    const token = added.out[0]!;
    assert.match(token, /^tg_[A-Za-z0-9_-]{43}$/);
    const text = await readFile(file, 'utf8');
    assert.doesNotMatch(text, new RegExp(token.slice(3)), 'the token itself is not stored');
    const entries = parseTokenFile(text, file);
    assert.deepEqual(matchToken(entries, token), { hash: entries[0]!.hash, user: 'bob', role: 'user' });
    assert.equal((await stat(file)).mode & 0o777, 0o600);

    const second = await cli(['token', 'add', 'vic', '--role', 'viewer', '--file', file]);
    assert.equal(second.code, 0);
    const listed = await cli(['token', 'list', '--file', file]);
    assert.deepEqual(
      listed.out.map((row) => row.split('\t').slice(0, 2).join(' ')),
      ['bob user', 'vic viewer'],
    );
    assert.ok(listed.out.every((row) => !row.includes(token)));
    const listedJson = await cli(['token', 'list', '--file', file, '--json']);
    const view = tokenListSchema.parse(JSON.parse(listedJson.out.join('\n')));
    assert.deepEqual(
      view.tokens.map((entry) => [entry.user, entry.role, entry.hash]),
      entries
        .map((entry) => [entry.user, entry.role, entry.hash])
        .concat([['vic', 'viewer', parseTokenFile(await readFile(file, 'utf8'), file)[1]!.hash]]),
    );
    assert.ok(!listedJson.out.join('\n').includes(token));

    await writeFile(file, `# kept comment\n${await readFile(file, 'utf8')}`);
    const revoked = await cli(['token', 'revoke', 'bob', '--file', file]);
    assert.equal(revoked.code, 0, revoked.err.join('\n'));
    const after = await readFile(file, 'utf8');
    assert.match(after, /^# kept comment\n/);
    assert.equal(matchToken(parseTokenFile(after, file), token), undefined);
    assert.equal(parseTokenFile(after, file)[0]?.user, 'vic');
  });

  it('refuses bad users and roles, and will not append to a file the daemon would refuse', async (t) => {
    const scratch = await scratchDir('token-cli');
    t.after(scratch.remove);
    const file = path.join(scratch.dir, 'tokens');
    const badUser = await cli(['token', 'add', 'bob smith', '--role', 'user', '--file', file]);
    assert.equal(badUser.code, 2);
    assert.match(badUser.err.join('\n'), /user "bob smith": use 1 to 64 letters/);
    const badRole = await cli(['token', 'add', 'bob', '--role', 'root', '--file', file]);
    assert.equal(badRole.code, 2);
    await writeFile(file, 'garbage\n');
    const onBroken = await cli(['token', 'add', 'bob', '--role', 'user', '--file', file]);
    assert.equal(onBroken.code, 2);
    assert.match(onBroken.err.join('\n'), /tokens file .*tokens:1: expected 3 fields, found 1/);
    assert.equal(await readFile(file, 'utf8'), 'garbage\n');
  });
});
