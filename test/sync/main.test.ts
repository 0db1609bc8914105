import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseSyncServiceListening, syncServiceListeningLine } from '../../core/contract/well-known.ts';
import { RawWsClient } from './raw-ws-client.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

describe('runSyncServiceCommand', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`prints where it listens, serves, and exits 0 on ${signal}`, { timeout: 20_000 }, async () => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          "const { runSyncServiceCommand } = await import('./sync/main.ts'); await runSyncServiceCommand({ host: '127.0.0.1', port: 0 });",
        ],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = once(child, 'exit');
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      const listening = parseSyncServiceListening(`${line}\n`);
      assert.ok(listening, `unexpected first line: ${JSON.stringify(line)}; stderr: ${stderr}`);
      assert.equal(line, syncServiceListeningLine('127.0.0.1', listening.port));

      const client = await RawWsClient.connect(listening.port);
      const reply = await client.request({ id: '0', signal_entry: { state: 's' } });
      assert.deepEqual(reply.json.signal_entry, { seq: 1 });
      const closed = new Promise<number>((resolve) => client.ws.once('close', (code) => resolve(code)));

      child.kill(signal);
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, `exit code ${code}; stderr: ${stderr}`);
      assert.equal(await closed, 1001);
    });
  }
});
