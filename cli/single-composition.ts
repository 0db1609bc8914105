/** The composition `testground run single` stands for: one group named `single` holding every instance. */
export interface SingleRunOptions {
  /** The plan's manifest name. */
  plan: string;
  testCase: string;
  builder?: string;
  runner?: string;
  instances: number;
  testParams?: Record<string, string>;
  buildConfig?: Record<string, unknown>;
  runConfig?: Record<string, unknown>;
  /** Shown as the composition's `metadata.name`. */
  name?: string;
  /** A prebuilt artifact the group starts from instead of being built (`--use-build`). */
  artifact?: string;
  /** Packages the build takes at another version (`-d module=version`, the original's `--dep`). */
  dependencies?: Record<string, string>;
}

/** A JSON composition document; the daemon checks it like any other (CONTRACT §6). */
export function singleRunComposition(options: SingleRunOptions): Record<string, unknown> {
  const nonEmpty = (value: Record<string, unknown> | undefined): boolean =>
    value !== undefined && Object.keys(value).length > 0;
  return {
    ...(options.name ? { metadata: { name: options.name } } : {}),
    global: {
      plan: options.plan,
      case: options.testCase,
      total_instances: options.instances,
      ...(options.builder ? { builder: options.builder } : {}),
      ...(options.runner ? { runner: options.runner } : {}),
      ...(nonEmpty(options.buildConfig) ? { build_config: options.buildConfig } : {}),
      ...(nonEmpty(options.runConfig) ? { run_config: options.runConfig } : {}),
      ...(nonEmpty(options.testParams) ? { run: { test_params: options.testParams } } : {}),
      ...(nonEmpty(options.dependencies)
        ? {
            build: {
              dependencies: Object.entries(options.dependencies ?? {}).map(([module, version]) => ({
                module,
                version,
              })),
            },
          }
        : {}),
    },
    groups: [
      {
        id: 'single',
        instances: { count: options.instances },
        ...(options.artifact === undefined ? {} : { run: { artifact: options.artifact } }),
      },
    ],
  };
}
