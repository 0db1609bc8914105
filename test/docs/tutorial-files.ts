import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/processes.ts';

export const tutorialPath = path.join(repoRoot, 'docs/writing-plans.md');
export const tutorialPlanDir = path.join(repoRoot, 'plans/ping-pong');

export function readTutorial(): string {
  return readFileSync(tutorialPath, 'utf8');
}

/** The fenced blocks of a Markdown text whose info string names a file: ```ts file=index.ts */
export function filesOf(markdown: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const match of markdown.matchAll(/^```\w* file=(\S+)\n([\s\S]*?)^```$/gm)) {
    const [, name, body] = match;
    assert.ok(!files.has(name!), `the tutorial writes ${name} once`);
    files.set(name!, body!);
  }
  return files;
}

/** The fenced blocks marked as compositions: ```toml composition */
export function compositionsOf(markdown: string): string[] {
  return [...markdown.matchAll(/^```toml composition\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
}
