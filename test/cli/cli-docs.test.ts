/** docs/cli.md is generated from the command tree (`npm run docs:cli`); this fails when it has drifted. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { cliDocsFile, renderCliDocs } from '../../scripts/cli-docs.ts';

describe('docs/cli.md', () => {
  it('is what `npm run docs:cli` generates from the CLI itself', async () => {
    const checkedIn = await readFile(cliDocsFile, 'utf8');
    assert.ok(
      checkedIn === renderCliDocs(),
      'docs/cli.md differs from the CLI\'s own help: run "npm run docs:cli" and commit docs/cli.md',
    );
  });

  it('holds every command, the help text of each and the exit code table', () => {
    const docs = renderCliDocs();
    for (const title of [
      'testground run single',
      'testground build purge',
      'testground plan create',
      'testground completion',
    ]) {
      assert.match(docs, new RegExp(`^## ${title}$`, 'm'));
    }
    assert.match(docs, /^ {2}--tp, --test-param <key=value> +test parameter \(repeatable\)/m);
    assert.match(docs, /^\| 5 \| `unreachable` \| /m);
    assert.match(docs, /^\| 6 \| `running` \| /m);
  });
});
