/**
 * The `toml` helper's output, written the way the original's encoder (BurntSushi/toml v0.4) writes it, so
 * a rendered composition reads the same: keys sorted, plain keys of a table before its sub-tables, a blank
 * line before each top-level table and each `[[array]]` entry, nested keys indented two spaces per level,
 * nil values left out.
 */
import { formatFloat } from './float-format.ts';
import { tomlDateText } from './toml-dates.ts';
import { GoMap, GoStruct, TomlDate, type GoValue, type MaybeValue } from './values.ts';

type TomlType = 'bool' | 'integer' | 'float' | 'string' | 'datetime' | 'array' | 'arrayOfTables' | 'table';

const noKeyMessage = 'toml: top-level values must be Go maps or structs';

/** Encodes a table (a map or the data struct) as a TOML document. */
export function encodeToml(value: MaybeValue): string {
  if (value === undefined || value === null) throw new Error('toml: nothing to encode: the value is nil');
  const encoder = new TomlEncoder();
  encoder.encode([], value);
  return encoder.output;
}

function tomlTypeOf(value: GoValue): TomlType | undefined {
  if (value === null) return undefined;
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'bigint') return 'integer';
  if (typeof value === 'number') return 'float';
  if (typeof value === 'string') return 'string';
  if (value instanceof TomlDate) return 'datetime';
  if (Array.isArray(value)) return arrayElementType(value) === 'table' ? 'arrayOfTables' : 'array';
  return 'table';
}

/** The type of an array's elements, judged by the first; nil elements cannot be written. */
function arrayElementType(array: GoValue[]): TomlType | undefined {
  if (array.length === 0) return undefined;
  const types = array.map(tomlTypeOf);
  if (types.some((type) => type === undefined)) throw new Error('toml: cannot encode array with nil element');
  return types[0];
}

const isTableLike = (type: TomlType | undefined): boolean => type === 'table' || type === 'arrayOfTables';

const isBareKey = (key: string): boolean => /^[A-Za-z0-9_-]+$/.test(key);

function quoteTomlString(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (char === '"' || char === '\\') out += `\\${char}`;
    else if (char === '\b') out += '\\b';
    else if (char === '\t') out += '\\t';
    else if (char === '\n') out += '\\n';
    else if (char === '\f') out += '\\f';
    else if (char === '\r') out += '\\r';
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += char;
  }
  return `${out}"`;
}

const quoteKey = (key: string): string => (key === '' ? '""' : isBareKey(key) ? key : quoteTomlString(key));

/** Entries of a map (sorted) or of the struct (in field order). */
function entriesOf(table: GoMap | GoStruct): [string, GoValue][] {
  if (table instanceof GoMap) return table.sortedKeys().map((key) => [key, table.entries.get(key) ?? null]);
  return [...table.fields];
}

class TomlEncoder {
  output = '';

  private write(text: string): void {
    this.output += text;
  }

  private newline(): void {
    if (this.output !== '') this.write('\n');
  }

  private indent(key: string[]): string {
    return '  '.repeat(Math.max(key.length - 1, 0));
  }

  encode(key: string[], value: GoValue): void {
    if (value === null) return;
    if (value instanceof GoMap || value instanceof GoStruct) return this.table(key, value);
    if (Array.isArray(value) && tomlTypeOf(value) === 'arrayOfTables') return this.arrayOfTables(key, value);
    this.keyValue(key, value, false);
  }

  private table(key: string[], table: GoMap | GoStruct): void {
    if (key.length === 1) this.newline();
    if (key.length > 0) {
      this.write(`${this.indent(key)}[${key.map(quoteKey).join('.')}]`);
      this.newline();
    }
    this.tableBody(key, table, false);
  }

  private arrayOfTables(key: string[], array: GoValue[]): void {
    if (key.length === 0) throw new Error(noKeyMessage);
    for (const element of array) {
      if (element === null) continue;
      this.newline();
      this.write(`${this.indent(key)}[[${key.map(quoteKey).join('.')}]]`);
      this.newline();
      if (!(element instanceof GoMap || element instanceof GoStruct))
        throw new Error('toml: an array of tables holds a value that is not a table');
      this.tableBody(key, element, false);
    }
  }

  /** The keys of a table: plain values first, then sub-tables, each group sorted. */
  private tableBody(key: string[], table: GoMap | GoStruct, inline: boolean): void {
    const entries = entriesOf(table);
    const direct = entries.filter(([, value]) => !isTableLike(tomlTypeOf(value)));
    const nested = entries.filter(([, value]) => isTableLike(tomlTypeOf(value)));
    const writeGroup = (group: [string, GoValue][], trailingComma: boolean): void => {
      group.forEach(([name, value], i) => {
        if (value === null) return;
        if (inline) {
          this.keyValue([name], value, true);
          if (trailingComma || i !== group.length - 1) this.write(', ');
        } else {
          this.encode([...key, name], value);
        }
      });
    };
    if (inline) this.write('{');
    writeGroup(direct, nested.length > 0);
    writeGroup(nested, false);
    if (inline) this.write('}');
  }

  private keyValue(key: string[], value: GoValue, inline: boolean): void {
    const last = key.at(-1);
    if (last === undefined) throw new Error(noKeyMessage);
    this.write(`${this.indent(key)}${quoteKey(last)} = `);
    this.element(value);
    if (!inline) this.newline();
  }

  private element(value: GoValue): void {
    if (value === null) throw new Error('toml: cannot encode a nil value');
    if (typeof value === 'string') return this.write(quoteTomlString(value));
    if (typeof value === 'boolean' || typeof value === 'bigint') return this.write(String(value));
    if (typeof value === 'number') {
      if (Number.isNaN(value)) return this.write('nan');
      if (!Number.isFinite(value)) return this.write(value > 0 ? '+inf' : '-inf');
      const text = formatFloat(value, 'f', -1);
      return this.write(text.includes('.') ? text : `${text}.0`);
    }
    if (value instanceof TomlDate) return this.write(tomlDateText(value));
    if (Array.isArray(value)) {
      arrayElementType(value);
      this.write('[');
      value.forEach((element, i) => {
        this.element(element);
        if (i !== value.length - 1) this.write(', ');
      });
      return this.write(']');
    }
    this.tableBody([], value, true);
  }
}
