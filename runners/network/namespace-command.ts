import type { NetworkNamespace } from './network-shaper.ts';

/**
 * The argv that runs `argv` inside a namespace: `nsenter -t <pid> -n` (only the network namespace: the
 * host's binaries and files stay in view) or `ip netns exec <name>`. Both exec the command in place, so
 * the process started is the command itself.
 */
export function namespaceCommand(namespace: NetworkNamespace, argv: readonly string[]): string[] {
  return namespace.kind === 'pid'
    ? ['nsenter', '-t', String(namespace.pid), '-n', '--', ...argv]
    : ['ip', 'netns', 'exec', namespace.name, ...argv];
}

export function describeNamespace(namespace: NetworkNamespace): string {
  return namespace.kind === 'pid'
    ? `the network namespace of pid ${namespace.pid}`
    : `netns ${namespace.name}`;
}

/**
 * `sh` reading its script from stdin (runHostCommand's `input`), then running it with stdin closed, so
 * the commands it runs never read the script as their own input.
 */
export const shFromStdin = ['sh', '-c', 'script=$(cat); exec </dev/null; eval "$script"'] as const;
