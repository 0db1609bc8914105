/**
 * Brings the files instances wrote to `/outputs` on every node into the daemon's outputs layout
 * (`<outputsDir>/<group>/<index>/…`), so `collect` works as with local runners wherever the daemon is:
 * after the instances ended, one short-lived service per node that ran some (the outputs dump,
 * outputs-dump-script.ts) reads their containers through the node's engine and writes the archives to its
 * output, which the daemon reads through the manager and unpacks here. Only regular files and directories
 * are kept, never outside the instance's directory, and at most `quotaBytes` per instance.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract, type Extract } from 'tar-stream';
import type { ResolvedGroup } from '../../core/run.ts';
import type { TaskLog } from '../../core/task-log.ts';
import { createLabels } from '../../docker/labels.ts';
import type { SwarmClient } from '../../docker/swarm-client.ts';
import { outputsDumpScript } from './outputs-dump-script.ts';
import type { TaskWatcher } from './task-watcher.ts';
import { withDeadline } from './swarm-sync-service.ts';

export interface OutputsCollection {
  swarm: Pick<SwarmClient, 'createService' | 'serviceLogs'>;
  watcher: Pick<TaskWatcher, 'until'>;
  runId: string;
  daemonId: string;
  plan: string;
  /** The image the dump runs in (the sync service's, as the nodes pull it). */
  image: string;
  /** The nodes that ran instances, by id, with their hostnames for messages. */
  nodes: ReadonlyMap<string, string>;
  groups: readonly Pick<ResolvedGroup, 'id' | 'instances'>[];
  outputsDir: string;
  quotaBytes: number;
  log: TaskLog;
  onCreated: (serviceId: string) => void;
  signal: AbortSignal;
  /** How long one node's dump may take, its start included; default 300 000 ms. */
  timeoutMs?: number;
}

/** Collects every node's outputs; a node that fails is reported in the task log and the others go on. */
export async function collectOutputs(collection: OutputsCollection): Promise<void> {
  await Promise.all(
    [...collection.nodes].map(([nodeId, hostname]) =>
      collectNode(collection, nodeId, hostname).catch((error: Error) => {
        collection.log.warn(
          `cluster:swarm: the outputs of the instances on node ${hostname} could not be collected: ${error.message}`,
        );
      }),
    ),
  );
}

async function collectNode(collection: OutputsCollection, nodeId: string, hostname: string): Promise<void> {
  const { swarm, runId } = collection;
  const labels = createLabels({
    runId,
    daemonId: collection.daemonId,
    plan: collection.plan,
    role: 'outputs-collector',
  });
  const serviceId = await swarm.createService({
    name: `tg-${runId}-outputs-${nodeId.slice(0, 12)}`,
    image: collection.image,
    labels,
    containerLabels: labels,
    env: { TESTGROUND_RUN_ID: runId },
    entrypoint: ['node', '-e', outputsDumpScript],
    networks: [],
    mounts: [
      { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock', readOnly: true },
    ],
    constraints: [`node.id==${nodeId}`],
  });
  collection.onCreated(serviceId);
  const timeoutMs = collection.timeoutMs ?? 300_000;
  const fate = await withDeadline(
    collection.watcher.until(
      serviceId,
      (candidate) => candidate.kind === 'ended' || candidate.kind === 'unschedulable',
    ),
    Date.now() + timeoutMs,
    collection.signal,
    () => `the outputs dump on node ${hostname} did not end within ${timeoutMs} ms`,
  );
  if (fate.kind === 'unschedulable') throw new Error(`swarm cannot place the outputs dump: ${fate.reason}`);
  const reader = new OutputsDumpReader(collection);
  const logs = await swarm.serviceLogs(serviceId, {
    follow: false,
    onStdout: (chunk) => reader.push(chunk),
    onStderr: (chunk) => reader.stderr(chunk),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await logs.ended;
  await reader.finish();
  if (reader.fatal !== undefined) throw new Error(reader.fatal);
  if (reader.done === undefined) {
    throw new Error(
      `the dump ended before it said it was done${reader.errorText ? `: ${reader.errorText.trim().slice(-2_000)}` : ''}`,
    );
  }
  collection.log.info(
    `cluster:swarm: collected the outputs of ${reader.done} instance(s) on node ${hostname} (${reader.files} file(s))`,
  );
}

type DumpLine =
  | { start: [string, number] }
  | { data: string }
  | { end: 1 }
  | { skip: [string, number]; why: string }
  | { done: number }
  | { fatal: string };

/** Reads a dump's lines in order and unpacks each instance's archive into its directory. */
class OutputsDumpReader {
  fatal: string | undefined;
  done: number | undefined;
  files = 0;
  errorText = '';
  private readonly collection: OutputsCollection;
  private partial = '';
  private chain: Promise<void> = Promise.resolve();
  private current: { extract: Extract; finished: Promise<void>; label: string } | undefined;

  constructor(collection: OutputsCollection) {
    this.collection = collection;
  }

  push(chunk: Buffer): Promise<void> {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() !== '') this.chain = this.chain.then(() => this.handle(line));
    }
    return this.chain;
  }

  stderr(chunk: Buffer): void {
    this.errorText = (this.errorText + chunk.toString('utf8')).slice(-8_192);
  }

  async finish(): Promise<void> {
    if (this.partial.trim() !== '') await this.push(Buffer.from('\n'));
    await this.chain;
    if (this.current) {
      this.current.extract.destroy(new Error('the dump ended in the middle of an archive'));
      this.current = undefined;
    }
  }

  private async handle(line: string): Promise<void> {
    let message: DumpLine;
    try {
      message = JSON.parse(line) as DumpLine;
    } catch {
      return;
    }
    if ('start' in message) await this.start(message.start);
    else if ('data' in message) await this.write(Buffer.from(message.data, 'base64'));
    else if ('end' in message) await this.end();
    else if ('skip' in message) {
      this.collection.log.info(
        `cluster:swarm: no outputs from ${message.skip[0]}[${message.skip[1]}]: ${message.why}`,
      );
    } else if ('done' in message) this.done = message.done;
    else if ('fatal' in message) this.fatal = message.fatal;
  }

  private async start([group, index]: [string, number]): Promise<void> {
    await this.end();
    const known = this.collection.groups.find((candidate) => candidate.id === group);
    if (!known || !Number.isInteger(index) || index < 0 || index >= known.instances) {
      throw new Error(`the dump names an instance this run does not have: ${JSON.stringify([group, index])}`);
    }
    const root = path.join(this.collection.outputsDir, group, String(index));
    await mkdir(root, { recursive: true });
    const extract = tarExtract();
    const label = `${group}[${index}]`;
    let bytes = 0;
    let truncated = false;
    extract.on('entry', (header, stream, next) => {
      const target = entryTarget(root, header.name);
      const skip = (): void => {
        stream.on('end', () => next());
        stream.resume();
      };
      if (target === undefined || (header.type !== 'file' && header.type !== 'directory')) return skip();
      if (header.type === 'directory') {
        mkdir(target, { recursive: true }).then(skip, (error: Error) => next(error));
        return;
      }
      bytes += header.size ?? 0;
      if (bytes > this.collection.quotaBytes) {
        if (!truncated) {
          this.collection.log.warn(
            `cluster:swarm: ${label}: outputs beyond the quota of ${this.collection.quotaBytes} bytes were not kept`,
          );
        }
        truncated = true;
        return skip();
      }
      this.files += 1;
      mkdir(path.dirname(target), { recursive: true })
        .then(() => pipeline(stream, createWriteStream(target, { mode: 0o644 })))
        .then(
          () => next(),
          (error: Error) => next(error),
        );
    });
    const finished = once(extract, 'finish').then(() => undefined);
    finished.catch(() => undefined);
    this.current = { extract, finished, label };
  }

  private async write(bytes: Buffer): Promise<void> {
    const current = this.current;
    if (!current) return;
    if (!current.extract.write(bytes)) await once(current.extract, 'drain');
  }

  private async end(): Promise<void> {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    current.extract.end(() => undefined);
    await current.finished;
  }
}

/**
 * Where an archive entry goes: its path without the leading `outputs/` (the archived directory itself),
 * inside `root`; `undefined` for the root itself and for any path that would leave it.
 */
export function entryTarget(root: string, name: string): string | undefined {
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts[0] === 'outputs') parts.shift();
  if (parts.length === 0 || parts.some((part) => part === '..')) return undefined;
  const base = path.resolve(root);
  const target = path.resolve(base, ...parts);
  return target.startsWith(base + path.sep) ? target : undefined;
}
