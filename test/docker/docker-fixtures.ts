/**
 * What the Docker tests share: a real engine (failing loudly when there is none), labels that mark what a
 * test file created so that `after` removes exactly that, and a one-shot container run.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { ContainerExit, ContainerSpec } from '../../docker/container-engine.ts';
import { DockerEngine } from '../../docker/docker-engine.ts';
import { daemonLabel, labelFilter, runIdLabel, type LabelFilter } from '../../docker/labels.ts';
import { RuntimeImageProvider, type RuntimeImage } from '../../builders/runtime-image.ts';
import { packContext } from '../../docker/build-context.ts';

/** The engine at DOCKER_HOST or /var/run/docker.sock; throws (failing the test) with how to start it. */
export async function connectEngine(): Promise<DockerEngine> {
  const engine = new DockerEngine();
  try {
    await engine.ping();
  } catch (error) {
    throw new Error(
      `these tests need a running Docker engine and found none: ${(error as Error).message}. ` +
        '`npm test` starts one (scripts/test.sh); by hand: `apt-get install -y docker.io && dockerd &` as root.',
      { cause: error },
    );
  }
  return engine;
}

/** Labels for everything one test file creates, and the filter that finds it all again. */
export function testScope(suite: string): {
  runId: string;
  labels: Record<string, string>;
  filter: LabelFilter;
} {
  const runId = `test-${suite}-${randomBytes(4).toString('hex')}`;
  const labels = { [runIdLabel]: runId, [daemonLabel]: 'tests' };
  return { runId, labels, filter: labelFilter({ [runIdLabel]: runId }) };
}

/** Removes the containers, networks and images carrying the scope's labels (the runtime image never does). */
export async function removeScope(engine: DockerEngine, filter: LabelFilter): Promise<void> {
  const containers = await engine.listContainers(filter, { all: true });
  await Promise.all(containers.map((container) => engine.removeContainer(container.id, { force: true })));
  const networks = await engine.listNetworks(filter);
  await Promise.all(networks.map((network) => engine.removeNetwork(network.id)));
  const images = await engine.listImages(filter);
  for (const image of images) await engine.removeImage(image.id, { force: true });
}

/** An image `FROM base` with `files` beside its Dockerfile and `entrypoint`, built with the scope's labels. */
export function buildTestImage(
  engine: DockerEngine,
  options: {
    base: string;
    entrypoint: readonly string[];
    files?: readonly { name: string; content: string }[];
    tag: string;
    labels: Record<string, string>;
  },
): Promise<string> {
  const files = options.files ?? [];
  const dockerfile = [
    `FROM ${options.base}`,
    ...files.map((file) => `COPY ${file.name} /plan/${file.name}`),
    `ENTRYPOINT ${JSON.stringify(options.entrypoint)}`,
    '',
  ].join('\n');
  return engine.buildImage(
    {
      context: {
        tar: packContext([
          { type: 'content', name: 'Dockerfile', content: dockerfile },
          ...files.map((file) => ({ type: 'content' as const, ...file })),
        ]),
      },
      tags: [options.tag],
      labels: options.labels,
    },
    () => undefined,
  );
}

/** A /24 in 10.128.0.0/9, random so that concurrent test files (and runs) rarely meet. */
export function randomSubnet(): { subnet: string; prefix: string } {
  const prefix = `10.${randomInt(128, 255)}.${randomInt(0, 255)}`;
  return { subnet: `${prefix}.0/24`, prefix };
}

/**
 * The daemon id the tests' runtime image providers label with. Not a test's own daemon id: tests remove
 * what carries theirs, and the runtime image is the machine's cache, shared by every test file.
 */
export const testRuntimeDaemonId = 'tests';

/** One provider per test file: the runtime image is built once per machine and kept as a cache. */
export function testRuntimeImage(engine: DockerEngine): Promise<RuntimeImage> {
  return new RuntimeImageProvider(engine, { daemonId: testRuntimeDaemonId }).ensure({ log: () => {} });
}

export interface ContainerRun extends ContainerExit {
  id: string;
  stdout: string;
  stderr: string;
}

/** Creates, attaches, starts and waits for a container (left in place: the scope's cleanup removes it). */
export async function runContainer(
  engine: DockerEngine,
  spec: ContainerSpec,
  timeoutMs = 30_000,
): Promise<ContainerRun> {
  const id = await engine.createContainer(spec);
  let stdout = '';
  let stderr = '';
  const signal = AbortSignal.timeout(timeoutMs);
  const logs = await engine.attachLogs(id, {
    onStdout: (chunk) => void (stdout += chunk.toString()),
    onStderr: (chunk) => void (stderr += chunk.toString()),
    signal,
  });
  try {
    await engine.startContainer(id);
  } catch (error) {
    logs.close();
    throw error;
  }
  const exit = await engine.waitContainer(id, signal);
  await logs.ended;
  return { id, stdout, stderr, ...exit };
}
