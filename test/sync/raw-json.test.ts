import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rawJsonMember } from '../../sync/raw-json.ts';

describe('rawJsonMember', () => {
  it('returns the member source text exactly, spellings and whitespace included', () => {
    const payload =
      '{ "n": 12345678901234567890, "f": 1.50, "s": "\\u00e9\\/\\"}" , "a": [ 1 , {"b":"]"} ] }';
    const text = ` {"id":"1", "publish" : {"topic":"t", "payload" :  ${payload}\n}}\n`;
    assert.equal(rawJsonMember(text, ['publish', 'payload']), payload);
  });

  it('finds every kind of value', () => {
    for (const value of ['"str"', '-0', '1e+2', 'true', 'false', 'null', '[]', '{}', '"a\\\\"']) {
      assert.equal(rawJsonMember(`{"x":{"y":${value}}}`, ['x', 'y']), value);
    }
  });

  it('resolves duplicate keys to the last one, like JSON.parse', () => {
    assert.equal(rawJsonMember('{"a":{"p":1},"a":{"p":2}}', ['a', 'p']), '2');
  });

  it('matches keys written with escapes', () => {
    assert.equal(rawJsonMember('{"p\\u0061yload":[1]}', ['payload']), '[1]');
  });

  it('returns undefined for a missing member or a step that is not an object', () => {
    assert.equal(rawJsonMember('{"a":1}', ['b']), undefined);
    assert.equal(rawJsonMember('{"a":[{"b":1}]}', ['a', 'b']), undefined);
    assert.equal(rawJsonMember('{"a":"{\\"b\\":1}"}', ['a', 'b']), undefined);
  });

  it('skips a deeply nested sibling without recursion', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    assert.equal(rawJsonMember(`{"deep":${deep},"x":7}`, ['x']), '7');
  });
});
