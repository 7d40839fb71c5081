/**
 * The Linux POSIX ACL xattr format (`system.posix_acl_access`), just enough to recognise a
 * minimal ACL (owner, group, other: the mode bits) and turn it into permission bits.
 *
 * Layout (little-endian): u32 version (2), then 8-byte entries: u16 tag, u16 perm, u32 id.
 */

const ACL_VERSION = 2;
const TAG_USER_OBJ = 0x01;
const TAG_GROUP_OBJ = 0x04;
const TAG_OTHER = 0x20;

/**
 * The permission bits (0o777) a minimal access ACL stands for, or null if the ACL is malformed or
 * has named users/groups or a mask (not representable by a mode).
 *
 * @example
 * ```ts
 * modeFromAccessAcl(aclBytes); // 0o755 for u::rwx,g::r-x,o::r-x
 * ```
 */
export function modeFromAccessAcl(value: Uint8Array): number | null {
  if (value.length < 4 || (value.length - 4) % 8 !== 0) return null;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  if (view.getUint32(0, true) !== ACL_VERSION) return null;
  const seen = new Map<number, number>();
  for (let offset = 4; offset < value.length; offset += 8) {
    const tag = view.getUint16(offset, true);
    const permissions = view.getUint16(offset + 2, true);
    if ((tag !== TAG_USER_OBJ && tag !== TAG_GROUP_OBJ && tag !== TAG_OTHER) || seen.has(tag) || permissions > 7) return null;
    seen.set(tag, permissions);
  }
  const owner = seen.get(TAG_USER_OBJ);
  const group = seen.get(TAG_GROUP_OBJ);
  const other = seen.get(TAG_OTHER);
  if (owner === undefined || group === undefined || other === undefined) return null;
  return (owner << 6) | (group << 3) | other;
}
