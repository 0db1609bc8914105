/**
 * docs/glossary.md explains the words a new user meets (the list issue 12 asked for), and every word
 * docs/writing-plans.md sets in bold, which it promises are in the glossary.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../helpers/processes.ts';

const glossary = readFileSync(path.join(repoRoot, 'docs/glossary.md'), 'utf8');
const tutorial = readFileSync(path.join(repoRoot, 'docs/writing-plans.md'), 'utf8');

/** Each entry's word, and the other name it gives in parentheses: `| **plan** (test plan) |`. */
const entries = new Set(
  [...glossary.matchAll(/^\| \*\*([^*]+)\*\*(?: \(([^)]+)\))? \|/gm)].flatMap(([, word, alias]) =>
    [word!, alias].filter((name): name is string => name !== undefined).map((name) => name.toLowerCase()),
  ),
);

function defines(word: string): boolean {
  const lower = word.toLowerCase();
  return entries.has(lower) || (lower.endsWith('s') && entries.has(lower.slice(0, -1)));
}

describe('docs/glossary.md', () => {
  it('explains the words a user of plans meets', () => {
    const words = [
      'plan',
      'test case',
      'instance',
      'group',
      'composition',
      'run',
      'task',
      'builder',
      'runner',
      'artifact',
      'sync service',
      'barrier',
      'state',
      'topic',
      'CONTRACT',
      'seed',
      'outcome',
      'manifest',
      'test param',
    ];
    assert.deepEqual(
      words.filter((word) => !defines(word)),
      [],
      `glossary entries: ${[...entries].join(', ')}`,
    );
  });

  it('has an entry for every word docs/writing-plans.md sets in bold', () => {
    const bold = [...new Set([...tutorial.matchAll(/\*\*([^*]+)\*\*/g)].map((match) => match[1]!))];
    assert.ok(bold.length >= 5, `writing-plans.md sets words in bold: ${bold.join(', ')}`);
    assert.deepEqual(
      bold.filter((word) => !defines(word)),
      [],
    );
  });
});
