import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeSummary, TaskState } from '../../../docker/swarm-client.ts';
import { taskFate, type TaskFateInput } from '../../../runners/cluster-swarm/task-fate.ts';

const node = (overrides: Partial<NodeSummary> = {}): NodeSummary => ({
  id: 'n2',
  hostname: 'tgsw-n2',
  address: '10.240.77.12',
  role: 'worker',
  leader: false,
  state: 'ready',
  availability: 'active',
  message: '',
  nanoCpus: 2e9,
  memoryBytes: 2 ** 34,
  labels: {},
  ...overrides,
});

const task = (overrides: Partial<TaskState> = {}): TaskState => ({
  id: 't1',
  serviceId: 's1',
  nodeId: 'n2',
  desiredState: 'running',
  state: 'running',
  message: 'started',
  error: '',
  exitCode: null,
  containerId: 'c1',
  containerLabels: {},
  publishedPorts: [],
  updatedAt: new Date(0),
  ...overrides,
});

const fate = (input: Partial<TaskFateInput>) =>
  taskFate({ task: task(), node: node(), unschedulableForMs: 0, unschedulableGraceMs: 10_000, ...input });

describe('taskFate: what a swarm task means for its instance', () => {
  it('waits while swarm has no task yet or prepares it, and says running once it runs', () => {
    assert.deepEqual(fate({ task: undefined }), { kind: 'waiting' });
    for (const state of ['new', 'pending', 'assigned', 'accepted', 'preparing', 'starting']) {
      assert.deepEqual(fate({ task: task({ state, containerId: '' }) }), { kind: 'waiting' }, state);
    }
    assert.deepEqual(fate({}), { kind: 'running' });
  });

  it('turns exits into exit codes: complete is 0, failed keeps its code', () => {
    assert.deepEqual(fate({ task: task({ state: 'complete', exitCode: 0 }) }), {
      kind: 'ended',
      ending: { kind: 'exited', exitCode: 0, signal: null },
    });
    assert.deepEqual(
      fate({ task: task({ state: 'failed', exitCode: 1, error: 'task: non-zero exit (1)' }) }),
      {
        kind: 'ended',
        ending: { kind: 'exited', exitCode: 1, signal: null },
      },
    );
  });

  it("a task that never got a container failed to start, with swarm's reason and the node", () => {
    const result = fate({ task: task({ state: 'rejected', error: 'No such image: x', containerId: '' }) });
    assert.equal(result.kind, 'ended');
    assert.deepEqual(result.kind === 'ended' && result.ending, {
      kind: 'failed-to-start',
      reason: 'swarm could not start it on node tgsw-n2 (10.240.77.12): No such image: x',
    });
  });

  it('a task stopped by the run (shutdown) ran or never started', () => {
    assert.deepEqual(fate({ task: task({ state: 'shutdown', desiredState: 'shutdown', exitCode: 137 }) }), {
      kind: 'ended',
      ending: { kind: 'exited', exitCode: 137, signal: null },
    });
    assert.deepEqual(fate({ task: task({ state: 'shutdown', desiredState: 'shutdown', containerId: '' }) }), {
      kind: 'ended',
      ending: { kind: 'never-started' },
    });
  });

  it('an instance on a node that went down is lost, naming the node and why', () => {
    const result = fate({ node: node({ state: 'down', message: 'heartbeat failure' }) });
    assert.deepEqual(result, {
      kind: 'ended',
      ending: {
        kind: 'lost',
        reason: 'its node tgsw-n2 (10.240.77.12) went down: heartbeat failure; its end was never seen',
      },
    });
  });

  it('a scheduling error counts only once it outlasted the grace period', () => {
    const pending = task({
      state: 'pending',
      nodeId: '',
      containerId: '',
      error: 'no suitable node (insufficient resources on 3 nodes)',
    });
    assert.deepEqual(fate({ task: pending, node: undefined, unschedulableForMs: 9_999 }), {
      kind: 'waiting',
    });
    assert.deepEqual(fate({ task: pending, node: undefined, unschedulableForMs: 10_000 }), {
      kind: 'unschedulable',
      reason: 'no suitable node (insufficient resources on 3 nodes)',
    });
  });
});
