#!/usr/bin/env node
// The CLI is written in TypeScript and run through tsx's loader, so `npx testground` works from a clean
// checkout without a build step, and `npm install -g .` installs the same entry.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../cli/main.ts');
process.exitCode = await runCli(process.argv);
