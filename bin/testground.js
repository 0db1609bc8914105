#!/usr/bin/env node
// The CLI is written in TypeScript and run through tsx's loader, so `npx testground` works from a clean
// checkout without a build step, and `npm install -g .` installs the same entry.
// This entry is the one place that joins the CLI to the servers it can start on this host: the CLI talks
// to daemons over HTTP and never imports the daemon itself.
import { register } from 'tsx/esm/api';

// A reader that stops early (`testground tasks | head -1`) closes the pipe: that ends the command quietly, as
// it ends ls or git, instead of with a stack trace. Any other write error is said in one line.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code !== 'EPIPE') process.stderr.write(`error: cannot write the output: ${error.message}\n`);
    process.exit(error.code === 'EPIPE' ? (process.exitCode ?? 0) : 1);
  });
}

register();
const { runCli } = await import('../cli/main.ts');
process.exitCode = await runCli(process.argv, {
  runDaemon: async (flags) => (await import('../daemon/main.ts')).runDaemonCommand(flags),
  runSyncService: async (options) => (await import('../sync/main.ts')).runSyncServiceCommand(options),
});
