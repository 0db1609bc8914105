// The CLI as one bundled ES module, made from its TypeScript sources the first time they are run and
// again whenever one of the files it was made from changed (each is listed with its size and mtime).
// Through tsx's loader, every CLI command paid ~0.3 s of start-up (a loader thread, each of ~150 modules
// resolved and transformed through it) before it did anything; the bundle starts in a third of that.
// Only the CLI is bundled: the daemon and the sync service find files beside their sources, so they
// still start through tsx (bin/testground.js).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ownRoot = path.resolve(import.meta.dirname, '..');
// A bundle a CLI started a moment ago may still be loading; older ones are removed.
const staleBundleAgeMs = 10 * 60_000;

/**
 * The bundled CLI module (`runCli`) of the checkout at `root` (`cli/main.ts`), up to date with its
 * sources; undefined when it can be neither read nor made (a read-only install, esbuild missing), and the
 * caller runs the sources through tsx instead.
 * @param {string} [root]
 * @returns {Promise<{ runCli: (argv: string[], servers: unknown) => Promise<number> } | undefined>}
 */
export async function loadCliBundle(root = ownRoot) {
  const places = bundlePlaces(root);
  try {
    const bundle = freshBundle(places) ?? (await makeBundle(places));
    return await import(pathToFileURL(bundle).href);
  } catch {
    return undefined;
  }
}

/** @param {string} root */
function bundlePlaces(root) {
  const dir = path.join(root, '.testground', 'cli');
  // Names the current bundle and the inputs it was made from; replaced by a rename, so a reader sees
  // either the old pair or the new one.
  return { root, dir, currentFile: path.join(dir, 'current.json') };
}

/** The current bundle's path, if every file it was made from is as it was then. */
function freshBundle({ root, dir, currentFile }) {
  let current;
  try {
    current = JSON.parse(readFileSync(currentFile, 'utf8'));
  } catch {
    return undefined;
  }
  for (const [file, size, mtimeMs] of current.inputs) {
    const stat = statSync(path.join(root, file), { throwIfNoEntry: false });
    if (stat?.size !== size || stat.mtimeMs !== mtimeMs) return undefined;
  }
  return path.join(dir, current.bundle);
}

async function makeBundle({ root, dir, currentFile }) {
  const { build } = await import('esbuild');
  mkdirSync(dir, { recursive: true });
  const unique = randomBytes(4).toString('hex');
  const bundleName = `cli-${unique}.mjs`;
  const startedMs = Date.now();
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['cli/main.ts'],
    outfile: path.join(dir, bundleName),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20.19',
    logLevel: 'silent',
    metafile: true,
    // Bundled CommonJS packages still get a `require`.
    banner: {
      js: "import { createRequire as __tgCreateRequire } from 'node:module'; const require = __tgCreateRequire(import.meta.url);",
    },
  });
  const inputs = Object.keys(result.metafile.inputs).map((file) => {
    const stat = statSync(path.join(root, file));
    return [file, stat.size, stat.mtimeMs];
  });
  // A source saved while esbuild read it may be in this bundle as it was before: used this once, the
  // bundle is not recorded as current, so the next start makes it again.
  if (inputs.some(([, , mtimeMs]) => mtimeMs >= startedMs)) return path.join(dir, bundleName);
  const next = `${currentFile}.${unique}`;
  writeFileSync(next, JSON.stringify({ bundle: bundleName, inputs }));
  renameSync(next, currentFile);
  removeStaleBundles(dir, bundleName);
  return path.join(dir, bundleName);
}

function removeStaleBundles(dir, keep) {
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    if (name === keep || name === 'current.json') continue;
    const file = path.join(dir, name);
    try {
      if (now - statSync(file).mtimeMs > staleBundleAgeMs) rmSync(file, { force: true });
    } catch {
      // Removed by another CLI meanwhile.
    }
  }
}
