/**
 * Go's fmt for the values a template holds: `Sprint`, `Sprintln` and `Sprintf` (the `print`, `println`
 * and `printf` functions, and how an action prints its value). Verbs: %v %+v %s %q %d %b %o %O %x %X %c
 * %U %e %E %f %F %g %G %t %T %%, with flags `+ - # 0 space`, width, precision, `*` and `[n]`; a verb that
 * does not fit its argument prints Go's `%!d(string=abc)`, a missing argument `%!d(MISSING)`, extra ones
 * `%!(EXTRA int=1)`.
 */
import { formatFloat } from './float-format.ts';
import { quoteGo, quoteRune } from './go-quote.ts';
import { goTimeString } from './toml-dates.ts';
import { GoMap, GoStruct, goTypeName, TomlDate, type GoValue } from './values.ts';

interface Flags {
  plus: boolean;
  minus: boolean;
  sharp: boolean;
  zero: boolean;
  space: boolean;
  width?: number;
  precision?: number;
}

const noFlags: Flags = { plus: false, minus: false, sharp: false, zero: false, space: false };

/** fmt.Sprint: operands separated by a space when neither side is a string. */
export function sprint(args: readonly GoValue[]): string {
  let text = '';
  args.forEach((arg, i) => {
    const isString = typeof arg === 'string';
    if (i > 0 && !isString && typeof args[i - 1] !== 'string') text += ' ';
    text += formatValue(arg);
  });
  return text;
}

/** fmt.Sprintln: operands always separated by a space, then a newline. */
export function sprintln(args: readonly GoValue[]): string {
  return `${args.map((arg) => formatValue(arg)).join(' ')}\n`;
}

/** What a verb prints for one value, `%v` by default. */
export function formatValue(value: GoValue, verb = 'v', flags: Flags = noFlags): string {
  return pad(formatUnpadded(value, verb, flags, 0), flags, isNumeric(value), typeof value === 'bigint');
}

/** What an action prints: like `%v`, except that the data struct prints without its pointer's `&`. */
export function formatActionValue(value: GoValue): string {
  return value instanceof GoStruct ? formatUnpadded(value, 'v', noFlags, 1) : formatValue(value);
}

const isNumeric = (value: GoValue): boolean => typeof value === 'bigint' || typeof value === 'number';

function formatUnpadded(value: GoValue, verb: string, flags: Flags, depth: number): string {
  if (verb === 'T') return goTypeName(value);
  if (value === null) return verb === 'v' ? '<nil>' : `%!${verb}(<nil>)`;
  if (typeof value === 'boolean') return verb === 'v' || verb === 't' ? String(value) : badVerb(verb, value);
  if (typeof value === 'bigint') return formatInteger(value, verb, flags) ?? badVerb(verb, value);
  if (typeof value === 'number') return formatFloatVerb(value, verb, flags) ?? badVerb(verb, value);
  if (typeof value === 'string') return formatString(value, verb, flags) ?? badVerb(verb, value);
  // time.Time has a String method, which every string verb uses.
  if (value instanceof TomlDate)
    return formatString(goTimeString(value), verb, flags) ?? badVerb(verb, value);
  const inner = (element: GoValue): string => formatUnpadded(element, verb, flags, depth + 1);
  if (Array.isArray(value)) return `[${value.map(inner).join(' ')}]`;
  if (value instanceof GoMap)
    return `map[${value
      .sortedKeys()
      .map((key) => `${inner(key)}:${inner(value.entries.get(key) ?? null)}`)
      .join(' ')}]`;
  const fields = [...value.fields].map(([name, field]) => (flags.plus ? `${name}:` : '') + inner(field));
  // The data is a pointer to a struct in Go: printed at the top as &{…}.
  return `${depth === 0 ? '&' : ''}{${fields.join(' ')}}`;
}

function badVerb(verb: string, value: GoValue): string {
  return `%!${verb}(${goTypeName(value)}=${formatUnpadded(value, 'v', noFlags, 0)})`;
}

function withSign(digits: string, negative: boolean, flags: Flags): string {
  if (negative) return `-${digits}`;
  if (flags.plus) return `+${digits}`;
  if (flags.space) return ` ${digits}`;
  return digits;
}

function formatInteger(value: bigint, verb: string, flags: Flags): string | undefined {
  const negative = value < 0n;
  const magnitude = negative ? -value : value;
  let digits: string;
  let prefix = '';
  switch (verb) {
    case 'v':
    case 'd':
      digits = magnitude.toString(10);
      break;
    case 'b':
      digits = magnitude.toString(2);
      if (flags.sharp) prefix = '0b';
      break;
    case 'o':
    case 'O':
      digits = magnitude.toString(8);
      if (verb === 'O') prefix = '0o';
      else if (flags.sharp && digits !== '0') prefix = '0';
      break;
    case 'x':
    case 'X':
      digits = magnitude.toString(16);
      if (verb === 'X') digits = digits.toUpperCase();
      if (flags.sharp) prefix = verb === 'X' ? '0X' : '0x';
      break;
    case 'c':
      return String.fromCodePoint(validRune(value));
    case 'q':
      return quoteRune(validRune(value));
    case 'U': {
      const hex = magnitude.toString(16).toUpperCase().padStart(4, '0');
      const shown = flags.sharp ? ` '${String.fromCodePoint(validRune(value))}'` : '';
      return `U+${hex}${shown}`;
    }
    default:
      return undefined;
  }
  if (flags.precision !== undefined) {
    if (flags.precision === 0 && magnitude === 0n) digits = '';
    digits = digits.padStart(flags.precision, '0');
  }
  return withSign(prefix + digits, negative, flags);
}

const validRune = (value: bigint): number =>
  value >= 0n && value <= 0x10ffffn && !(value >= 0xd800n && value <= 0xdfffn) ? Number(value) : 0xfffd;

function formatFloatVerb(value: number, verb: string, flags: Flags): string | undefined {
  let text: string;
  switch (verb) {
    case 'v':
      text = formatFloat(value, 'g', flags.precision ?? -1);
      break;
    case 'g':
    case 'G':
      text = formatFloat(value, verb, flags.precision ?? -1);
      break;
    case 'e':
    case 'E':
    case 'f':
    case 'F':
      text = formatFloat(value, verb, flags.precision ?? 6);
      break;
    default:
      return undefined;
  }
  if (text.startsWith('-')) return text;
  return withSign(text.replace(/^\+/, ''), false, flags);
}

function formatString(value: string, verb: string, flags: Flags): string | undefined {
  const truncated = flags.precision === undefined ? value : [...value].slice(0, flags.precision).join('');
  switch (verb) {
    case 'v':
    case 's':
      return truncated;
    case 'q':
      return quoteGo(truncated);
    case 'x':
    case 'X': {
      const hex = Buffer.from(truncated, 'utf8').toString('hex');
      return verb === 'X' ? hex.toUpperCase() : hex;
    }
    default:
      return undefined;
  }
}

function pad(text: string, flags: Flags, numeric: boolean, integer: boolean): string {
  const width = flags.width ?? 0;
  const length = [...text].length;
  if (length >= width) return text;
  const fill = width - length;
  if (flags.minus) return text + ' '.repeat(fill);
  // Go ignores the 0 flag for an integer with a precision, not for a float.
  if (flags.zero && numeric && !(integer && flags.precision !== undefined)) {
    const sign = /^[+\- ]/.test(text) ? (text[0] ?? '') : '';
    return sign + '0'.repeat(fill) + text.slice(sign.length);
  }
  if (flags.zero && !numeric) return '0'.repeat(fill) + text;
  return ' '.repeat(fill) + text;
}

/** fmt.Sprintf. */
export function sprintf(format: string, args: readonly GoValue[]): string {
  let out = '';
  let argIndex = 0;
  let reordered = false;
  let i = 0;
  const readNumber = (): number | undefined => {
    const match = /^\d+/.exec(format.slice(i));
    if (!match) return undefined;
    i += match[0].length;
    return Number(match[0]);
  };
  /** `[n]` before a verb, `*` or precision: the next argument is the n-th. */
  const readIndex = (): boolean => {
    const match = /^\[(\d+)\]/.exec(format.slice(i));
    if (!match) return true;
    i += match[0].length;
    reordered = true;
    const index = Number(match[1]) - 1;
    if (index < 0 || index >= args.length) return false;
    argIndex = index;
    return true;
  };
  const starArgument = (): number | undefined => {
    const arg = args[argIndex++];
    return typeof arg === 'bigint' ? Number(arg) : undefined;
  };
  while (i < format.length) {
    const percent = format.indexOf('%', i);
    if (percent === -1) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, percent);
    i = percent + 1;
    const flags: Flags = { ...noFlags };
    for (; i < format.length; i++) {
      const c = format[i];
      if (c === '+') flags.plus = true;
      else if (c === '-') flags.minus = true;
      else if (c === '#') flags.sharp = true;
      else if (c === '0') flags.zero = true;
      else if (c === ' ') flags.space = true;
      else break;
    }
    let goodIndex = readIndex();
    if (format[i] === '*') {
      i++;
      const width = starArgument();
      if (width === undefined) out += '%!(BADWIDTH)';
      else if (width < 0) Object.assign(flags, { minus: true, width: -width });
      else flags.width = width;
      goodIndex = readIndex();
    } else {
      const width = readNumber();
      if (width !== undefined) flags.width = width;
    }
    if (format[i] === '.') {
      i++;
      goodIndex = readIndex();
      if (format[i] === '*') {
        i++;
        const precision = starArgument();
        if (precision === undefined || precision < 0) out += '%!(BADPREC)';
        else flags.precision = precision;
        goodIndex = readIndex();
      } else {
        flags.precision = readNumber() ?? 0;
      }
    }
    if (i >= format.length) {
      out += '%!(NOVERB)';
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i) ?? 0);
    i += verb.length;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (!goodIndex) {
      out += `%!${verb}(BADINDEX)`;
      continue;
    }
    if (argIndex >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const arg = args[argIndex++] as GoValue;
    out += formatValue(arg, verb, flags);
  }
  if (!reordered && argIndex < args.length) {
    const extra = args
      .slice(argIndex)
      .map((arg) => (arg === null ? '<nil>' : `${goTypeName(arg)}=${formatValue(arg)}`));
    out += `%!(EXTRA ${extra.join(', ')})`;
  }
  return out;
}
