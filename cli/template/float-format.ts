/**
 * Go's strconv.FormatFloat for float64 with the `e`, `f` and `g` formats: the shortest digits that read
 * back as the same number when no precision is given, otherwise the exact binary value rounded half to
 * even. `%v` of a float is `g` with the shortest digits, which switches to an exponent from 1e+21 and below
 * 1e-4, and (Go's rule) whenever the exponent reaches 6 or more digits beyond the shortest: `1e+06`.
 */

interface Decimal {
  /** Significant digits, no leading or trailing zeros; empty for zero. */
  digits: string;
  /** Position of the decimal point relative to the digits: value = 0.digits × 10^point. */
  point: number;
}

/** The shortest digits that round-trip (JavaScript's Number#toExponential gives the same as Go's). */
function shortestDecimal(value: number): Decimal {
  if (value === 0) return { digits: '', point: 0 };
  const [mantissa = '', exponent = '0'] = value.toExponential().split('e');
  return { digits: mantissa.replace('.', '').replace(/0+$/, ''), point: Number(exponent) + 1 };
}

/** The exact decimal expansion of a positive double (every double has a finite one). */
function exactDecimal(value: number): Decimal {
  if (value === 0) return { digits: '', point: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let exponent = -1074;
  if (biased !== 0) {
    mantissa |= 1n << 52n;
    exponent = biased - 1075;
  }
  if (exponent >= 0) {
    const text = (mantissa << BigInt(exponent)).toString();
    return { digits: text.replace(/0+$/, ''), point: text.length };
  }
  // mantissa × 2^-k = mantissa × 5^k / 10^k
  const text = (mantissa * 5n ** BigInt(-exponent)).toString();
  return { digits: text.replace(/0+$/, ''), point: text.length + exponent };
}

/** Rounds to `count` significant digits, half to even (ties are exact here). */
function round(decimal: Decimal, count: number): Decimal {
  const { digits, point } = decimal;
  if (count < 0 || count >= digits.length) return decimal;
  const next = digits[count] ?? '0';
  const halfway = next === '5' && count + 1 === digits.length;
  const previousOdd = count > 0 && Number(digits[count - 1]) % 2 === 1;
  const up = halfway ? previousOdd : next >= '5';
  if (!up) return { digits: digits.slice(0, count).replace(/0+$/, ''), point };
  let i = count - 1;
  while (i >= 0 && digits[i] === '9') i--;
  if (i < 0) return { digits: '1', point: point + 1 };
  return { digits: digits.slice(0, i) + String(Number(digits[i]) + 1), point };
}

const digitAt = (decimal: Decimal, i: number): string =>
  i >= 0 && i < decimal.digits.length ? (decimal.digits[i] ?? '0') : '0';

function formatE(decimal: Decimal, precision: number, letter: 'e' | 'E'): string {
  let text = decimal.digits.length === 0 ? '0' : digitAt(decimal, 0);
  if (precision > 0) {
    text += '.';
    for (let i = 1; i <= precision; i++) text += digitAt(decimal, i);
  }
  const exponent = decimal.digits.length === 0 ? 0 : decimal.point - 1;
  const magnitude = Math.abs(exponent).toString().padStart(2, '0');
  return `${text}${letter}${exponent < 0 ? '-' : '+'}${magnitude}`;
}

function formatF(decimal: Decimal, precision: number): string {
  let text = '';
  if (decimal.point > 0) for (let i = 0; i < decimal.point; i++) text += digitAt(decimal, i);
  else text = '0';
  if (precision > 0) {
    text += '.';
    for (let i = 1; i <= precision; i++) text += digitAt(decimal, decimal.point + i - 1);
  }
  return text;
}

/**
 * strconv.FormatFloat(value, format, precision, 64).
 * @param precision digits after the point (`e`, `f`) or significant digits (`g`); -1 for the shortest.
 */
export function formatFloat(
  value: number,
  format: 'e' | 'E' | 'f' | 'F' | 'g' | 'G',
  precision: number,
): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  const negative = value < 0 || Object.is(value, -0);
  const magnitude = Math.abs(value);
  const shortest = precision < 0;
  let decimal: Decimal;
  let digits = precision;
  const lower = format.toLowerCase();
  if (shortest) {
    decimal = shortestDecimal(magnitude);
    digits =
      lower === 'e'
        ? Math.max(decimal.digits.length - 1, 0)
        : lower === 'f'
          ? Math.max(decimal.digits.length - decimal.point, 0)
          : decimal.digits.length;
  } else {
    const exact = exactDecimal(magnitude);
    const count =
      lower === 'e' ? precision + 1 : lower === 'f' ? exact.point + precision : Math.max(precision, 1);
    if (lower === 'g' && precision === 0) digits = 1;
    decimal = round(exact, count);
  }
  const sign = negative ? '-' : '';
  if (lower === 'e') return sign + formatE(decimal, digits, format === 'E' ? 'E' : 'e');
  if (lower === 'f') return sign + formatF(decimal, digits);
  let exponentLimit = digits;
  if (exponentLimit > decimal.digits.length && decimal.digits.length >= decimal.point)
    exponentLimit = decimal.digits.length;
  if (shortest) exponentLimit = 6;
  const exponent = decimal.point - 1;
  if (exponent < -4 || exponent >= exponentLimit) {
    const precisionE = Math.min(digits, decimal.digits.length);
    return sign + formatE(decimal, precisionE - 1, format === 'G' ? 'E' : 'e');
  }
  const precisionF = digits > decimal.point ? decimal.digits.length : digits;
  return sign + formatF(decimal, Math.max(precisionF - decimal.point, 0));
}
