/**
 * Stack traces in the plan's own sources, paid for only when something failed. A bundle names its source
 * map in its last line (`bundle.mjs.map` beside it; bundles built before that carry it inline); Node's
 * `--enable-source-maps` would read and parse it at every instance's start (a third of a bare `node`'s
 * start-up CPU on the 2-core reference machine, for a map that is only read when an error is recorded),
 * so runners start instances without it and the SDK maps the frames of the stacks it records here, from
 * the same map, the first time it needs them.
 */
import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const mapComment = '//# sourceMappingURL=';
const inlineMapPrefix = 'data:application/json;base64,';

/**
 * `stack` with each frame of `file` (a bundle naming its source map) replaced by its place in the
 * source it was bundled from, as `--enable-source-maps` shows it. Frames of other files, a stack Node
 * already mapped, and any failure to read the map leave the stack as it was.
 */
export function mapStackToSources(stack: string, file: string): string {
  const fileUrl = file.startsWith('file:') ? file : pathToFileURL(file).href;
  if (!stack.includes(fileUrl)) return stack;
  const map = loadMap(fileUrl);
  if (!map) return stack;
  const escaped = fileUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return stack.replace(new RegExp(`${escaped}:(\\d+):(\\d+)`, 'g'), (whole, line: string, column: string) => {
    const entry = map.findEntry(Number(line) - 1, Number(column) - 1) as {
      originalSource?: string;
      originalLine?: number;
      originalColumn?: number;
    };
    if (entry.originalSource === undefined || entry.originalLine === undefined) return whole;
    const source = new URL(entry.originalSource, fileUrl);
    const where = source.protocol === 'file:' ? fileURLToPath(source) : source.href;
    return `${where}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}`;
  });
}

// Read anew each time: it is asked for once or twice in an instance's life, when something failed.
function loadMap(fileUrl: string): SourceMap | undefined {
  try {
    const text = readFileSync(new URL(fileUrl), 'utf8');
    const at = text.lastIndexOf(mapComment);
    if (at === -1) return undefined;
    const reference = text.slice(at + mapComment.length).trim();
    const json = reference.startsWith(inlineMapPrefix)
      ? Buffer.from(reference.slice(inlineMapPrefix.length), 'base64').toString('utf8')
      : readFileSync(new URL(reference, fileUrl), 'utf8');
    return new SourceMap(JSON.parse(json) as SourceMapPayload);
  } catch {
    // No readable map: the stack stays as the bundle's.
    return undefined;
  }
}
