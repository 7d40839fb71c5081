// parsePath's byte limits (NAME_MAX 255, PATH_MAX 4096 UTF-8 bytes) counted without encoding
// short text: the answer must be the one an actual UTF-8 encoding gives, at every boundary.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parsePath } from './path.js';
import { codeOf } from '../../test/support/engram-cases.js';

const utf8Length = (text: string): number => new TextEncoder().encode(text).length;


describe('parsePath byte limits', () => {
  it('a component of 2-, 3- and 4-byte characters is refused exactly above 255 bytes', () => {
    for (const [character, bytes] of [['é', 2], ['€', 3], ['😀', 4]] as const) {
      const fits = Math.floor(255 / bytes);
      assert.equal(codeOf(() => parsePath('/' + character.repeat(fits))), undefined, `${fits} x ${character}`);
      assert.equal(codeOf(() => parsePath('/' + character.repeat(fits + 1))), 'NAME_TOO_LONG', `${fits + 1} x ${character}`);
    }
    // 85 three-byte characters are exactly 255 bytes; one more ASCII byte is over.
    assert.equal(codeOf(() => parsePath('/' + '€'.repeat(85))), undefined);
    assert.equal(codeOf(() => parsePath('/' + '€'.repeat(85) + 'x')), 'NAME_TOO_LONG');
  });

  it('a path of multi-byte components is refused exactly above 4096 bytes', () => {
    // 16 components of 85 three-byte characters: 16 * 255 + 16 slashes = 4096 bytes.
    const exact = '/' + Array.from({ length: 16 }, () => '€'.repeat(85)).join('/');
    assert.equal(utf8Length(exact), 4096);
    assert.equal(parsePath(exact).length, 16);
    assert.equal(codeOf(() => parsePath(exact + '/a')), 'NAME_TOO_LONG');
  });

  it('agrees with a UTF-8 encoding on random names', () => {
    const unit = fc.constantFrom('a', 'é', '€', '😀', 'z', '中');
    fc.assert(
      fc.property(fc.array(unit, { minLength: 1, maxLength: 140 }), (units) => {
        const name = units.join('');
        const expected = utf8Length(name) > 255 ? 'NAME_TOO_LONG' : undefined;
        assert.equal(codeOf(() => parsePath('/' + name)), expected);
      }),
    );
  });
});
