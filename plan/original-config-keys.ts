/**
 * The `build_config` and `run_config` keys the original Testground's builders and runners understood, by
 * key, with the components that had each (from their Go config types, over the releases). Compositions
 * written for the original carry them; here they have no effect, so they are warned about, not refused.
 */

const originalBuilderKeys: Readonly<Record<string, readonly string[]>> = Object.freeze({
  module_path: ['docker:go', 'exec:go'],
  exec_pkg: ['docker:go', 'exec:go'],
  fresh_gomod: ['docker:go', 'exec:go'],
  bypass_cache: ['docker:go', 'exec:go'],
  go_version: ['docker:go'],
  go_ipfs_version: ['docker:go'],
  go_proxy_mode: ['docker:go'],
  go_proxy_url: ['docker:go'],
  modfile: ['docker:go'],
  runtime_image: ['docker:go'],
  build_base_image: ['docker:go'],
  skip_runtime_image: ['docker:go'],
  enable_go_build_cache: ['docker:go'],
  disable_go_build_cache: ['docker:go'],
  reset_go_build_cache: ['docker:go'],
  enable_cgo: ['docker:go'],
  dockerfile_extensions: ['docker:go'],
  exposed_ports: ['docker:go'],
  path: ['docker:go', 'docker:generic'],
  build_args: ['docker:go', 'docker:generic'],
  dockerfile: ['docker:generic'],
  push_registry: ['docker:go', 'docker:generic'],
  registry_type: ['docker:go', 'docker:generic'],
  base_image: ['docker:node'],
});

const originalRunnerKeys: Readonly<Record<string, readonly string[]>> = Object.freeze({
  log_level: ['local:docker', 'cluster:swarm', 'cluster:k8s'],
  background: ['local:docker', 'cluster:swarm', 'cluster:k8s'],
  no_start: ['local:docker'],
  keep_containers: ['local:docker'],
  ulimits: ['local:docker'],
  exposed_ports: ['local:docker', 'cluster:k8s'],
  tail: ['local:docker'],
  outcomes_collection_timeout: ['local:docker'],
  additional_hosts: ['local:docker'],
  rm: ['local:docker'],
  log_file: ['local:docker'],
  keep_service: ['cluster:swarm', 'cluster:k8s'],
  rm_service: ['cluster:swarm'],
  docker_endpoint: ['cluster:swarm'],
  docker_tls: ['cluster:swarm'],
  docker_tls_ca_cert_path: ['cluster:swarm'],
  docker_tls_cert_path: ['cluster:swarm'],
  docker_tls_key_path: ['cluster:swarm'],
  provider: ['cluster:k8s'],
  sysctls: ['cluster:k8s'],
  pod_resource_cpu: ['cluster:k8s'],
  pod_resource_memory: ['cluster:k8s'],
  testplan_pod_cpu: ['cluster:k8s'],
  testplan_pod_memory: ['cluster:k8s'],
  collect_outputs_pod_cpu: ['cluster:k8s'],
  collect_outputs_pod_memory: ['cluster:k8s'],
  autoscaler_enabled: ['cluster:k8s'],
  run_timeout_min: ['cluster:k8s'],
  outputs_bucket: ['cluster:k8s'],
  outputs_bucket_region: ['cluster:k8s'],
});

/** The original components that understood `key`, or undefined when none did (then it is a typo here). */
export function originalComponentsWithKey(
  kind: 'builder' | 'runner',
  key: string,
): readonly string[] | undefined {
  const table = kind === 'builder' ? originalBuilderKeys : originalRunnerKeys;
  return Object.hasOwn(table, key) ? table[key] : undefined;
}
