import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeSummary, TaskState } from '../../../docker/swarm-client.ts';
import { TaskWatcher } from '../../../runners/cluster-swarm/task-watcher.ts';

const node: NodeSummary = {
  id: 'n1',
  hostname: 'tgsw-n1',
  address: '10.240.77.11',
  role: 'manager',
  leader: true,
  state: 'ready',
  availability: 'active',
  message: '',
  nanoCpus: 2e9,
  memoryBytes: 2 ** 34,
  labels: {},
};

const running = (serviceId: string): TaskState => ({
  id: `task-${serviceId}`,
  serviceId,
  nodeId: 'n1',
  desiredState: 'running',
  state: 'running',
  message: 'started',
  error: '',
  exitCode: null,
  containerId: `container-${serviceId}`,
  containerLabels: {},
  publishedPorts: [],
  updatedAt: new Date(),
});

/** A manager whose task list the test sets; `fail` makes it stop answering. */
function fakeManager() {
  const state = { tasks: [] as TaskState[], fail: false, lists: 0 };
  return {
    state,
    swarm: {
      endpoint: 'unix:///fake.sock',
      listTasks: async () => {
        state.lists += 1;
        if (state.fail) throw new Error('connect ECONNREFUSED');
        return state.tasks;
      },
      listNodes: async () => (state.fail ? Promise.reject(new Error('connect ECONNREFUSED')) : [node]),
    },
  };
}

describe('TaskWatcher: one list per tick for the whole run', () => {
  it('resolves waiters at the first list that shows the fate they want', async () => {
    const manager = fakeManager();
    const watcher = new TaskWatcher({ swarm: manager.swarm, intervalMs: 5 });
    try {
      const started = watcher.until('a', (fate) => fate.kind === 'running');
      const ended = watcher.until('b', (fate) => fate.kind === 'ended');
      manager.state.tasks = [running('a'), { ...running('b'), state: 'complete', exitCode: 0 }];
      assert.deepEqual(await started, { kind: 'running' });
      assert.deepEqual(await ended, { kind: 'ended', ending: { kind: 'exited', exitCode: 0, signal: null } });
    } finally {
      watcher.close();
    }
  });

  it('a task that vanishes is lost, unless the run stopped it (swarm deletes scaled-down tasks)', async () => {
    const manager = fakeManager();
    const watcher = new TaskWatcher({ swarm: manager.swarm, intervalMs: 5 });
    try {
      manager.state.tasks = [running('kept'), running('stopped')];
      await watcher.until('kept', (fate) => fate.kind === 'running');
      await watcher.until('stopped', (fate) => fate.kind === 'running');
      watcher.stopping('stopped');
      manager.state.tasks = [];
      const lost = await watcher.until('kept', (fate) => fate.kind === 'ended');
      assert.equal(lost.kind === 'ended' && lost.ending.kind, 'lost');
      assert.deepEqual(await watcher.until('stopped', (fate) => fate.kind === 'ended'), {
        kind: 'ended',
        ending: { kind: 'exited', exitCode: null, signal: 'SIGKILL' },
      });
    } finally {
      watcher.close();
    }
  });

  it('fails its waiters, naming the manager, once the manager has not answered for the grace period', async () => {
    const manager = fakeManager();
    manager.state.fail = true;
    const watcher = new TaskWatcher({ swarm: manager.swarm, intervalMs: 5, managerGraceMs: 50 });
    try {
      await assert.rejects(
        watcher.until('a', (fate) => fate.kind === 'running'),
        /swarm manager at unix:\/\/\/fake.sock has not answered for .*ECONNREFUSED/,
      );
    } finally {
      watcher.close();
    }
  });
});
