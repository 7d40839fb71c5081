import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { joinPath, parsePath } from './path.js';
import { codeOf } from '../../test/support/engram-cases.js';


describe('parsePath', () => {
  it('splits normalized absolute paths into components', () => {
    assert.deepEqual(parsePath('/'), []);
    assert.deepEqual(parsePath('/a'), ['a']);
    assert.deepEqual(parsePath('/a/b c/ü.txt'), ['a', 'b c', 'ü.txt']);
    assert.deepEqual(parsePath('/...'), ['...']);
  });

  it('refuses hostile or malformed paths with INVALID_PATH', () => {
    for (const path of ['', 'a', 'a/b', '/a/../b', '/..', '/.', '/a/./b', '//a', '/a/', '/a//b', '/a\0b', '/\ud800x']) {
      assert.equal(codeOf(() => parsePath(path)), 'INVALID_PATH', JSON.stringify(path));
    }
  });

  it('refuses a component over 255 bytes or a path over 4096 bytes with NAME_TOO_LONG', () => {
    assert.deepEqual(parsePath('/' + 'x'.repeat(255)), ['x'.repeat(255)]);
    assert.equal(codeOf(() => parsePath('/' + 'x'.repeat(256))), 'NAME_TOO_LONG');
    // 128 two-byte characters are 256 UTF-8 bytes.
    assert.equal(codeOf(() => parsePath('/' + 'é'.repeat(128))), 'NAME_TOO_LONG');
    const deep = '/' + Array.from({ length: 20 }, () => 'y'.repeat(250)).join('/');
    assert.equal(codeOf(() => parsePath(deep)), 'NAME_TOO_LONG');
  });

  it('throws TypeError when the path is not a string', () => {
    assert.throws(() => parsePath(42 as unknown as string), TypeError);
  });

  it('round-trips every valid component list through joinPath', () => {
    const component = fc
      .string({ minLength: 1, maxLength: 20 })
      .filter((text) => !text.includes('/') && !text.includes('\0') && text !== '.' && text !== '..' && !/\p{Cs}/u.test(text));
    fc.assert(
      fc.property(fc.array(component, { maxLength: 6 }), (components) => {
        assert.deepEqual(parsePath(joinPath(components)), components);
      }),
    );
  });
});
