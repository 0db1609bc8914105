#!/usr/bin/env node
// The CLI is written in TypeScript and needs no build step, so `npx testground` works from a clean
// checkout and `npm install -g .` installs the same entry: it runs as one bundle made from its sources
// (and made again when they change, bin/cli-bundle.js), or through tsx's loader where no bundle can be
// made. The daemon and the sync service always run through tsx.
// This entry is the one place that joins the CLI to the servers it can start on this host: the CLI talks
// to daemons over HTTP and never imports the daemon itself.
import { loadCliBundle } from './cli-bundle.js';

// A reader that stops early (`testground tasks | head -1`) closes the pipe. That is no error of the
// command: what it would still print is dropped, quietly instead of with a stack trace, and it goes on to
// exit by what it was doing (a task's outcome, 130 after Ctrl-C), so `set -o pipefail` still sees that.
// Any other write error is said in one line.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') {
      stream.write = () => true;
      return;
    }
    process.stderr.write(`error: cannot write the output: ${error.message}\n`);
    process.exit(1);
  });
}

let tsxRegistered = false;
/** Lets this process import our TypeScript sources (tsx's loader), once. */
async function registerTsx() {
  if (tsxRegistered) return;
  const { register } = await import('tsx/esm/api');
  register();
  tsxRegistered = true;
}

const { runCli } = (await loadCliBundle()) ?? (await registerTsx().then(() => import('../cli/main.ts')));
process.exitCode = await runCli(process.argv, {
  runDaemon: async (flags) => {
    await registerTsx();
    return (await import('../daemon/main.ts')).runDaemonCommand(flags);
  },
  runSyncService: async (options) => {
    await registerTsx();
    return (await import('../sync/main.ts')).runSyncServiceCommand(options);
  },
});
