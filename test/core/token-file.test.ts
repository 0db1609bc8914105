import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { formatTokenEntry, hashToken, newToken, parseTokenFile } from '../../core/token-file.ts';

describe('the tokens file', () => {
  it('stores the hex SHA-256 of the token, and new tokens carry 256 random bits', () => {
    assert.equal(hashToken('abc'), `sha256:${createHash('sha256').update('abc').digest('hex')}`);
    const tokens = new Set(Array.from({ length: 100 }, () => newToken()));
    assert.equal(tokens.size, 100);
    for (const token of tokens) assert.equal(Buffer.from(token.slice(3), 'base64url').length, 32);
  });

  it('reads entries around comments, blank lines and CRLF, and writes what it reads', () => {
    const bob = { hash: hashToken('b'), user: 'bob', role: 'user' as const };
    const ops = { hash: hashToken('o'), user: 'ops@example.org', role: 'admin' as const };
    const text = `# team tokens\r\n\r\n${formatTokenEntry(bob)}   # laptop\r\n\t${formatTokenEntry(ops)}\n`;
    assert.deepEqual(parseTokenFile(text, 'tokens'), [bob, ops]);
  });

  it('names every bad line: fields, hash, user, role, a repeated hash', () => {
    const good = formatTokenEntry({ hash: hashToken('x'), user: 'bob', role: 'user' });
    const text = [
      good,
      `${hashToken('y')} bob`,
      `${hashToken('y').toUpperCase()} bob user`,
      `${hashToken('z')} "bob smith" user`,
      `${hashToken('w')} bob root`,
      good.replace('bob', 'carol'),
    ].join('\n');
    assert.throws(
      () => parseTokenFile(text, '/etc/tg/tokens'),
      (error: Error & { details: { path: string; message: string }[] }) => {
        assert.deepEqual(
          error.details.map((detail) => detail.path),
          [
            '/etc/tg/tokens:2',
            '/etc/tg/tokens:3',
            '/etc/tg/tokens:4',
            '/etc/tg/tokens:5',
            '/etc/tg/tokens:6',
          ],
        );
        const [fields, hash, user, role, repeated] = error.details.map((detail) => detail.message);
        assert.match(fields!, /expected 3 fields, found 2/);
        assert.match(hash!, /is not "sha256:" and 64 lower-case hex digits/);
        assert.match(user!, /expected 3 fields, found 4/);
        assert.match(role!, /role "root" is not one of admin, user, viewer/);
        assert.match(repeated!, /the same token hash as line 1/);
        assert.match(error.message, /^tokens file \/etc\/tg\/tokens: /);
        return true;
      },
    );
  });
});
