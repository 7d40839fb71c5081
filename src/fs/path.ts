/**
 * Path validation: every path that enters VersionedEmbrFS goes through {@link parsePath}.
 *
 * Accepted: `/` and absolute paths of non-empty components separated by single `/`. Refused with
 * INVALID_PATH: a non-absolute path, NUL, an empty component (`//`, trailing `/`), `.` or `..`
 * components (the API takes normalized paths, so `..` could only be an escape attempt), and text
 * that is not valid Unicode (lone surrogates cannot be stored as UTF-8). Refused with
 * NAME_TOO_LONG: a component over 255 UTF-8 bytes or a path over 4096 UTF-8 bytes.
 *
 * @example
 * ```ts
 * parsePath('/a/b.txt'); // ['a', 'b.txt']
 * parsePath('/');        // []
 * parsePath('/a/../b');  // throws EmbrError INVALID_PATH
 * ```
 */
import { EmbrError } from '../errors.js';

/** Longest component in UTF-8 bytes (NAME_MAX). */
export const NAME_MAX_BYTES = 255;
/** Longest path in UTF-8 bytes (PATH_MAX). */
export const PATH_MAX_BYTES = 4096;

/** In `u` mode a surrogate pair is one code point, so this matches only unpaired surrogates. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * True when `text` (valid Unicode) takes more than `limit` bytes as UTF-8. One UTF-16 code unit
 * is at most 3 UTF-8 bytes, so short text is answered without counting.
 */
function utf8Over(text: string, limit: number): boolean {
  return text.length * 3 > limit && Buffer.byteLength(text, 'utf8') > limit;
}

function invalid(path: string, reason: string): EmbrError {
  return new EmbrError('INVALID_PATH', `invalid path ${JSON.stringify(path)}: ${reason}`, { path, reason });
}

/**
 * Splits a path into its components after validating it (see the module comment).
 *
 * @example
 * ```ts
 * parsePath('/docs/readme.md'); // ['docs', 'readme.md']
 * ```
 */
export function parsePath(path: string): string[] {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${typeof path}`);
  if (!path.startsWith('/')) throw invalid(path, 'not absolute');
  if (path.includes('\0')) throw invalid(path, 'contains NUL');
  if (LONE_SURROGATE.test(path)) throw invalid(path, 'not valid Unicode');
  if (utf8Over(path, PATH_MAX_BYTES)) {
    throw new EmbrError('NAME_TOO_LONG', `path longer than ${PATH_MAX_BYTES} bytes`, { path });
  }
  if (path === '/') return [];
  const components = path.slice(1).split('/');
  for (const component of components) validateName(component, path);
  return components;
}

/**
 * Validates one directory entry name (also used for snapshot and xattr names where fitting).
 *
 * @example
 * ```ts
 * validateName('a.txt', '/a.txt');
 * ```
 */
export function validateName(name: string, path: string): void {
  if (name.length === 0) throw invalid(path, 'empty component');
  if (name === '.' || name === '..') throw invalid(path, `'${name}' component`);
  if (name.includes('/')) throw invalid(path, 'component contains /');
  if (utf8Over(name, NAME_MAX_BYTES)) {
    throw new EmbrError('NAME_TOO_LONG', `component longer than ${NAME_MAX_BYTES} bytes in ${JSON.stringify(path.slice(0, 300))}`, { path });
  }
}

/**
 * Joins components back into a path.
 *
 * @example
 * ```ts
 * joinPath(['a', 'b']); // '/a/b'
 * ```
 */
export function joinPath(components: readonly string[]): string {
  return '/' + components.join('/');
}
