import { sdkImportName } from './node-bundle.ts';

/**
 * What to do about a bare import that neither esbuild nor tsc could resolve from the plan's own code: npm
 * installs only what package.json lists, so the package is missing from it (or the lock file pins it
 * elsewhere). Empty for what is no package: relative and absolute paths, `node:` modules, our SDK.
 */
export function missingPackageHint(specifier: string): string {
  const name = packageNameOf(specifier);
  if (name === undefined || name === sdkImportName) return '';
  return `: add "${name}" to the plan's package.json dependencies`;
}

/** `lodash/fp` → `lodash`, `@scope/pkg/sub` → `@scope/pkg`; undefined for a path or a `node:` module. */
export function packageNameOf(specifier: string): string | undefined {
  if (specifier.includes(':') || specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  const [first, second] = specifier.split('/');
  if (!first) return undefined;
  if (!first.startsWith('@')) return first;
  return second ? `${first}/${second}` : undefined;
}
