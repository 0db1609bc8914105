/** What the CLI's entry module gives: bin/cli-bundle.js. */
export interface CliModule {
  runCli(argv: string[], servers: unknown): Promise<number>;
}

export function loadCliBundle(root?: string): Promise<CliModule | undefined>;
