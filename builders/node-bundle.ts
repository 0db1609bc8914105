import type { BuildOptions } from 'esbuild';

/**
 * What every self-contained Node bundle we make shares (plan bundles, the sync service): one ES module
 * file for Node 20 that needs nothing beside it.
 */
export const nodeBundleOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'silent',
  // ws loads these native speed-ups optionally, inside a try/catch.
  external: ['bufferutil', 'utf-8-validate'],
  // CommonJS dependencies (the official SDK is one) call require(); ES module output needs one.
  banner: {
    js: "import { createRequire as __tgCreateRequire } from 'node:module'; const require = __tgCreateRequire(import.meta.url);",
  },
} as const satisfies BuildOptions;
