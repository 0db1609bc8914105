import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFloat } from '../../../cli/template/float-format.ts';
import { renderComposition } from '../../../cli/template/render-composition.ts';

/** printf and float printing, against what Go's fmt prints for the same template (second column). */
const goPrints: [string, string][] = [
  [
    '{{ printf "%5d|%-5s|%05.1f|%x|%X|%o|%b|%c|%U|%e|%g|%t|%T|%%" 42 "ab" 3.14159 255 "hi" 8 5 65 9731 123456.789 0.000012 true 1.0 }}',
    '   42|ab   |003.1|ff|6869|10|101|A|U+2603|1.234568e+05|1.2e-05|true|float64|%',
  ],
  [
    '{{ printf "%d %s" }}|{{ printf "%d" "x" }}|{{ printf "%s" 1 2 }}|{{ printf "%!" }}|{{ printf "%z" 1 }}|{{ printf "%v|%d|%s" nil nil nil }}',
    '%!d(MISSING) %!s(MISSING)|%!d(string=x)|%!s(int=1)%!(EXTRA int=2)|%!!(MISSING)|%!z(int=1)|<nil>|%!d(<nil>)|%!s(<nil>)',
  ],
  [
    '{{ printf "%.2f %.0f %.0f %.3e %8.3f %.10g %g %v" 2.675 0.5 1.5 1234.5678 3.14159 0.1 100000.0 1e100 }}',
    '2.67 0 2 1.235e+03    3.142 0.1 100000 1e+100',
  ],
  [
    '{{ printf "%q %q %q" "tab\\there" "ü" "\\x01" }} {{ printf "%q" 65 }} {{ printf "%U" 0x1F600 }} {{ printf "%#U" 0x1F600 }}',
    '"tab\\there" "ü" "\\x01" \'A\' U+1F600 U+1F600 \'😀\'',
  ],
  [
    '{{ printf "%[2]d %[1]d" 1 2 }} {{ printf "%*d|%-*d|" 5 1 4 2 }} {{ printf "%6.2f|%-8.3s|%+d|% d" 3.14159 "abcdef" 5 5 }}',
    '2 1     1|2   |   3.14|abc     |+5| 5',
  ],
  [
    '{{ printf "%x %X %#x %#o %08.3f %+.2e" -255 "Hi" 255 8 -3.14159 12345.678 }}',
    '-ff 4869 0xff 010 -003.142 +1.23e+04',
  ],
  ['{{ printf "%v %v %v %v" 1e-7 123456789.0 0.1 -1e-300 }}', '1e-07 1.23456789e+08 0.1 -1e-300'],
  [
    '{{ printf "%.3g %.10f %.1f %.1f %.1f %.2f" 1234567.0 0.1 0.25 0.35 2.5 1.005 }}',
    '1.23e+06 0.1000000000 0.2 0.3 2.5 1.00',
  ],
  ['{{ printf "%6.2f|%-6.1f|%06d|%-06d|%+06d" 1.0 2.0 -42 42 42 }}', '  1.00|2.0   |-00042|42    |+00042'],
  ['{{ printf "%10s|%-10q|%.1q|%x" "abc" "é" "xyz" "" }}', '       abc|"é"       |"x"|'],
  [
    '{{ printf "%v %s %d" (split "a,b") (split "a,b") (split "a,b") }}',
    '[a b] [a b] [%!d(string=a) %!d(string=b)]',
  ],
  ["{{ printf \"%c%c\" 'a' '\\n' }} {{ '\\u00e9' }} {{ '\\'' }}", 'a\n 233 39'],
  ['{{ printf "%5t|%-7v|%3v" true false "x" }}', ' true|false  |  x'],
  ['{{ printf "%e %E %G %.0e" 0.0 1e-10 1e-10 5.5 }}', '0.000000e+00 1.000000E-10 1E-10 6e+00'],
];

describe('printf: Go fmt verbs, flags and error forms', () => {
  goPrints.forEach(([template, expected], i) => {
    it(`case ${i + 1}: ${template.slice(0, 70)}`, () => {
      assert.equal(renderComposition(template, { file: 'comp.toml', env: {} }), expected);
    });
  });
});

describe('formatFloat (strconv.FormatFloat)', () => {
  it('shortest digits with %v rules: exponent from 1e+21, below 1e-4, and past 6 digits beyond the shortest', () => {
    const cases: [number, string][] = [
      [0, '0'],
      [-0.5, '-0.5'],
      [1e6, '1e+06'],
      [123456, '123456'],
      [1234567, '1.234567e+06'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [1e21, '1e+21'],
      [5e-324, '5e-324'],
      [Number.MAX_VALUE, '1.7976931348623157e+308'],
    ];
    for (const [value, text] of cases) assert.equal(formatFloat(value, 'g', -1), text, String(value));
  });

  it('fixed precision rounds the exact binary value half to even', () => {
    assert.equal(formatFloat(2.675, 'f', 2), '2.67'); // 2.67499999…
    assert.equal(formatFloat(0.5, 'f', 0), '0');
    assert.equal(formatFloat(1.5, 'f', 0), '2');
    assert.equal(formatFloat(2.5, 'f', 0), '2');
    assert.equal(formatFloat(0.009, 'f', 2), '0.01');
    assert.equal(formatFloat(999.9996, 'e', 3), '1.000e+03');
    assert.equal(formatFloat(1e100, 'f', -1), `1${'0'.repeat(100)}`);
  });

  it('NaN and infinities as Go spells them', () => {
    assert.equal(formatFloat(Number.NaN, 'g', -1), 'NaN');
    assert.equal(formatFloat(Number.POSITIVE_INFINITY, 'f', 2), '+Inf');
    assert.equal(formatFloat(Number.NEGATIVE_INFINITY, 'e', -1), '-Inf');
  });
});
