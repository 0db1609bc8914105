/**
 * `npm run demo` (scripts/demo.sh) as a user runs it, while another server answers on 8042, the old default
 * port, and TESTGROUND_ENDPOINT and TESTGROUND_TOKEN point at yet another: the demo starts its own daemon in
 * its own home on a free port, succeeds there, and neither of the other servers hears a single request.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../helpers/processes.ts';

const oldDefaultPort = 8042;

/** A server that answers every request as a healthy daemon would, and remembers what it was asked. */
interface Decoy {
  server: Server;
  requests: string[];
  port: number;
}

async function startDecoy(port: number): Promise<Decoy> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{"status":"ok"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return { server, requests, port: (server.address() as AddressInfo).port };
}

function runDemo(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    // A tenth of the seed's sleeps: the demo is the same, only quicker.
    const child = spawn('npm', ['run', 'demo', '--', '--test-param', 'sleep_scale=0.1'], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('npm run demo', () => {
  const decoys: Decoy[] = [];
  let onOldDefault: Decoy | undefined;
  let demoHome: string | undefined;
  before(async () => {
    decoys.push(await startDecoy(0));
    onOldDefault = await startDecoy(oldDefaultPort).catch((error: NodeJS.ErrnoException) => {
      // Something already answers there (a daemon someone started): the situation this test is about; the
      // assertions on the demo's own endpoint and on the other decoy still hold, only this count is unknown.
      if (error.code === 'EADDRINUSE') return undefined;
      throw error;
    });
    if (onOldDefault) decoys.push(onOldDefault);
  });
  after(async () => {
    for (const { server } of decoys) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    if (demoHome?.startsWith('/tmp/testground-demo.')) await rm(demoHome, { recursive: true, force: true });
  });

  it('runs on its own daemon, home and free port, never on 8042 or TESTGROUND_ENDPOINT, and succeeds', async (t) => {
    if (!onOldDefault) t.diagnostic(`port ${oldDefaultPort} was already taken by another process`);
    const { code, output } = await runDemo({
      TESTGROUND_ENDPOINT: `http://127.0.0.1:${decoys[0]!.port}`,
      TESTGROUND_TOKEN: 'a-token-of-another-daemon',
    });
    assert.equal(code, 0, `npm run demo exits 0; its output:\n${output}`);
    const own = /^demo daemon: http:\/\/127\.0\.0\.1:(\d+) \(home (\S+)\)$/m.exec(output);
    assert.ok(own, `the demo names its daemon's address and home:\n${output}`);
    demoHome = own[2]!;
    assert.notEqual(Number(own[1]), oldDefaultPort);
    assert.notEqual(Number(own[1]), decoys[0]!.port);
    assert.match(output, /^single: 10\/10 ok$/m);
    const archive = /^outputs: (\S+\.tgz)$/m.exec(output)?.[1];
    assert.ok(archive, `the demo names its archive:\n${output}`);
    assert.ok(archive.startsWith(`${demoHome}/`), `the archive is written in the demo's home: ${archive}`);
    assert.ok(existsSync(archive));
    for (const decoy of decoys) {
      assert.deepEqual(decoy.requests, [], `the server on port ${decoy.port} was asked nothing`);
    }
  });
});
