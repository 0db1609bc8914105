import http from 'node:http';
import { syncStateKey, type SyncScope } from '../core/contract/sync-wire.ts';
import type { InstanceOutcome } from '../core/run.ts';
import type { GroupProgress, RunProgress, SyncStateProgress } from '../core/run-progress.ts';
import type { TaskLog } from '../core/task-log.ts';
import type { RunProgressPort } from '../runners/runner.ts';
import { syncStatusPath, type SyncStatus } from '../sync/sync-service.ts';

/** Reads a sync service's states; the default asks its `GET /status` over HTTP. */
export type SyncStatusReader = (
  address: { host: string; port: number },
  signal: AbortSignal,
) => Promise<SyncStateProgress[]>;

export interface RunProgressTrackerOptions {
  runId: string;
  /** The run's sync scope: a state's name is shown without it (`ready`, not `run:…:states:ready`). */
  scope?: SyncScope;
  groups: readonly { id: string; instances: number }[];
  /** Called with each snapshot that differs from the one before (and with the last one at `stop`). */
  publish: (progress: RunProgress) => Promise<void>;
  /** How often it looks; 1000 ms unless given. A snapshot is published at most this often. */
  intervalMs?: number;
  readSyncStatus?: SyncStatusReader;
  now?: () => Date;
}

interface GroupCounts {
  instances: number;
  started: Set<number>;
  ended: Map<number, InstanceOutcome>;
}

/**
 * Counts a run's instances by phase from what its runner writes to the task log, and reads its sync service's
 * barriers, so that someone waiting on the run sees how far it got. It looks every `intervalMs` and publishes
 * only a snapshot that changed: a run that hangs on a barrier costs one entry, not one a second.
 */
export class RunProgressTracker implements RunProgressPort {
  private readonly options: RunProgressTrackerOptions;
  private readonly groups = new Map<string, GroupCounts>();
  private readonly intervalMs: number;
  private readonly readSyncStatus: SyncStatusReader;
  private readonly now: () => Date;
  private syncAddress: { host: string; port: number } | undefined;
  private states: SyncStateProgress[] = [];
  private lastPublished: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private readonly reads = new AbortController();

  constructor(options: RunProgressTrackerOptions) {
    this.options = options;
    this.intervalMs = options.intervalMs ?? 1_000;
    this.readSyncStatus = options.readSyncStatus ?? readSyncStatusOverHttp;
    this.now = options.now ?? (() => new Date());
    for (const group of options.groups) {
      this.groups.set(group.id, { instances: group.instances, started: new Set(), ended: new Map() });
    }
  }

  syncServiceAt(address: { host: string; port: number }): void {
    this.syncAddress = address;
  }

  /** The log the runner writes to: everything goes on to `log`, and instance phases and ends are counted. */
  wrap(log: TaskLog): TaskLog {
    return {
      info: (message) => log.info(message),
      warn: (message) => log.warn(message),
      error: (message) => log.error(message),
      output: (group, instance, stream, line) => log.output(group, instance, stream, line),
      instanceEnd: (group, instance, outcome, reason) => {
        this.groups.get(group)?.ended.set(instance, outcome);
        log.instanceEnd(group, instance, outcome, reason);
      },
      instancePhase: (group, instance, phase) => {
        if (phase === 'started') this.groups.get(group)?.started.add(instance);
        log.instancePhase?.(group, instance, phase);
      },
      ...(log.backpressure ? { backpressure: () => log.backpressure?.() } : {}),
    };
  }

  start(): void {
    this.schedule();
  }

  /** Stops looking and publishes the last snapshot if it changed. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.reads.abort();
    await this.ticking;
    await this.publishIfChanged();
  }

  /** The snapshot as it stands, with the sync states last read. */
  snapshot(): RunProgress {
    const groups: GroupProgress[] = [...this.groups].map(([group, counts]) => {
      const ended: GroupProgress['ended'] = {};
      for (const outcome of counts.ended.values()) ended[outcome] = (ended[outcome] ?? 0) + 1;
      let running = 0;
      for (const instance of counts.started) if (!counts.ended.has(instance)) running += 1;
      return { group, instances: counts.instances, started: counts.started.size, running, ended };
    });
    return { run: this.options.runId, groups, states: this.states, at: this.now().toISOString() };
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => this.schedule());
    }, this.intervalMs);
  }

  private async tick(): Promise<void> {
    if (this.syncAddress !== undefined) {
      try {
        const signal = AbortSignal.any([this.reads.signal, AbortSignal.timeout(this.intervalMs)]);
        const states = await this.readSyncStatus(this.syncAddress, signal);
        this.states = states.map((state) => ({ ...state, name: this.stateName(state.name) }));
      } catch {
        // The service is starting, stopping or slow: the states stay as last read, and the next tick asks again.
      }
    }
    if (!this.stopped) await this.publishIfChanged();
  }

  private stateName(key: string): string {
    if (this.options.scope === undefined) return key;
    const prefix = syncStateKey(this.options.scope, '');
    return key.startsWith(prefix) ? key.slice(prefix.length) : key;
  }

  private async publishIfChanged(): Promise<void> {
    const progress = this.snapshot();
    const { at: _at, ...compared } = progress;
    const key = JSON.stringify(compared);
    if (key === this.lastPublished) return;
    this.lastPublished = key;
    await this.options.publish(progress);
  }
}

/**
 * `GET /status` of the sync service at `address`. Through node:http rather than fetch: the daemon's first
 * fetch loads undici (~0.6 s of CPU on the 2-core reference machine), which the first run big enough to be
 * polled paid while it was starting its instances.
 */
export function readSyncStatusOverHttp(
  address: { host: string; port: number },
  signal: AbortSignal,
): Promise<SyncStateProgress[]> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      { host: address.host, port: address.port, path: syncStatusPath, signal },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('error', reject);
        response.on('end', () => {
          if (response.statusCode !== 200) {
            reject(new Error(`the sync service answered ${response.statusCode} to GET ${syncStatusPath}`));
            return;
          }
          try {
            resolve((JSON.parse(body) as SyncStatus).states);
          } catch (error) {
            reject(error as Error);
          }
        });
      },
    );
    request.on('error', reject);
  });
}
