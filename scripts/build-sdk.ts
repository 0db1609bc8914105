/**
 * `npm run build:sdk` (and `npm pack` of sdk/, whose prepack runs it): the SDK as a package of its own in
 * sdk/dist/: `index.js`, one ES module for Node 20 with everything it imports bundled (so the package has no
 * dependencies and installs offline), and `types/`, the declarations tsc generates from the
 * sources (`types/sdk/index.d.ts` is the entry). A plan written outside this repository gets the types by
 * `npm install <path to testground-sdk-<version>.tgz>` or a `file:` dependency; the builders still bundle
 * the SDK of the daemon that builds the plan, whatever the plan installed.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { nodeBundleOptions } from '../builders/node-bundle.ts';
import { emitSdkDeclarations, sdkDeclarationsEntry } from '../builders/sdk-types.ts';

const sdkDir = path.resolve(import.meta.dirname, '../sdk');
const sdkEntry = path.join(sdkDir, 'index.ts');
const outDir = path.join(sdkDir, 'dist');

await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });
await build({
  ...nodeBundleOptions,
  entryPoints: [sdkEntry],
  outfile: path.join(outDir, 'index.js'),
  logLevel: 'warning',
});
await emitSdkDeclarations(sdkEntry, path.join(outDir, 'types'));
const types = sdkDeclarationsEntry(path.join(outDir, 'types'), sdkEntry);
const size = ((await stat(path.join(outDir, 'index.js'))).size / 1024).toFixed(1);
console.log(`sdk/dist: index.js ${size} KiB, types ${path.relative(sdkDir, types)}`);
