/**
 * `npm run build:web`: bundles the dashboard (web/src) with esbuild into web/dist/, which the daemon serves
 * at `/`. Everything the page needs ends up in these files: no CDN, so it works offline.
 */
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const webDir = path.resolve(import.meta.dirname, '../web');
const outDir = path.join(webDir, 'dist');

await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });
await build({
  entryPoints: [path.join(webDir, 'src/main.ts')],
  outdir: outDir,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
});
await copyFile(path.join(webDir, 'index.html'), path.join(outDir, 'index.html'));

const sizes = await Promise.all(
  (await readdir(outDir))
    .filter((name) => !name.endsWith('.map'))
    .map(async (name) => `${name} ${((await stat(path.join(outDir, name))).size / 1024).toFixed(1)} KiB`),
);
console.log(`web/dist: ${sizes.join(', ')}`);
