/**
 * The POSIX conformance cases: one ordered list of system calls, run on tmpfs and on the mount.
 * Each case is one step; later cases build on earlier ones (same order on both sides). Cases with
 * `user: 'nobody'` run in a child process with uid/gid 65534. A case whose mount result differs on
 * purpose names the reason and the mount's result in `difference` (listed in docs/design/fuse.md).
 */
import type { Outcome, Step } from './posix-steps.js';

export interface ConformanceCase {
  name: string;
  step: Step;
  user?: 'nobody';
  /** A documented, deliberate difference: the mount gives `mount` instead of tmpfs's result. */
  difference?: { reason: string; mount: Outcome };
}

const NOBODY = 65534;

/**
 * Builds the full ordered case list. `patchLevel` is the mount's `fusePatchLevel`: with the stock
 * fuse-native (0) the cases its C side cannot pass carry their documented difference; with our
 * patched build (1) they must match tmpfs.
 */
export function buildCases(patchLevel: number): ConformanceCase[] {
  const stockOnly = (difference: ConformanceCase['difference']): Partial<ConformanceCase> => (patchLevel >= 1 ? {} : { difference });
  const cases: ConformanceCase[] = [];
  const add = (name: string, step: Step, extra: Partial<ConformanceCase> = {}): void => {
    cases.push({ name, step, ...extra });
  };

  // A. content at sizes around chunk and request boundaries: write, stat, read, pread, shrink, grow.
  const sizes = [0, 1, 100, 4095, 4096, 4097, 8192, 65535, 65536, 131073, 300000];
  for (const [index, size] of sizes.entries()) {
    const path = `size-${size}`;
    add(`writeFile of ${size} bytes`, { op: 'writeFile', path, data: { size, seed: index + 1 } });
    add(`stat of a ${size}-byte file`, { op: 'stat', path });
    add(`readFile of ${size} bytes`, { op: 'readFile', path });
    add(`pread in the middle of ${size} bytes`, { op: 'pread', path, offset: Math.floor(size / 2), length: 5000 });
    add(`pread past the end of ${size} bytes`, { op: 'pread', path, offset: size + 10, length: 100 });
    add(`truncate ${size} bytes to a third`, { op: 'truncate', path, size: Math.floor(size / 3) });
    add(`readFile after shrinking ${size}`, { op: 'readFile', path });
    add(`truncate ${size} grows with zeros`, { op: 'truncate', path, size: size + 5000 });
    add(`readFile after growing ${size}`, { op: 'readFile', path });
  }

  // B. overwrites at offsets (inside, at chunk edges, past the end leaving a hole).
  add('writeFile a 64 KiB base for overwrites', { op: 'writeFile', path: 'over', data: { size: 65536, seed: 99 } });
  for (const offset of [0, 1, 4095, 4096, 10000, 65536, 70000]) {
    add(`pwrite at ${offset} in r+`, { op: 'pwrite', path: 'over', flags: 'r+', offset, data: { size: 3000, seed: offset + 7 } });
    add(`readFile after pwrite at ${offset}`, { op: 'readFile', path: 'over' });
  }

  // C. appends.
  add('appendFile creates a log', { op: 'appendFile', path: 'log', data: 'line 0\n' });
  for (let line = 1; line <= 4; line += 1) add(`appendFile line ${line}`, { op: 'appendFile', path: 'log', data: `line ${line}\n` });
  add('readFile of the log', { op: 'readFile', path: 'log' });
  add('O_APPEND ignores the offset', { op: 'pwrite', path: 'log', flags: 'a', offset: 0, data: 'appended\n' });
  add('readFile after O_APPEND', { op: 'readFile', path: 'log' });

  // D. open flags.
  add('O_CREAT|O_EXCL on an existing file', { op: 'open', path: 'log', flags: 'wx' });
  add('O_CREAT|O_EXCL on a new file', { op: 'open', path: 'excl-new', flags: 'wx' });
  add('stat of the O_EXCL file', { op: 'stat', path: 'excl-new' });
  add('O_RDONLY on a missing file', { op: 'open', path: 'missing', flags: 'r' });
  add('O_RDWR on a missing file', { op: 'open', path: 'missing', flags: 'r+' });
  add('O_TRUNC empties an existing file', { op: 'open', path: 'log', flags: 'w' });
  add('readFile after O_TRUNC', { op: 'readFile', path: 'log' });
  add('a+ creates a file', { op: 'open', path: 'aplus', flags: 'a+' });
  add('echo > an existing file (overwrite)', { op: 'shell', command: 'echo first > echoed && echo second > echoed && cat echoed' });
  add('echo >> appends', { op: 'shell', command: 'echo third >> echoed && cat echoed' });
  add('create with mode 0600', { op: 'writeFile', path: 'mode600', data: 'secret', mode: 0o600 });
  add('stat of the 0600 file', { op: 'stat', path: 'mode600' });
  add('create with mode 0755', { op: 'writeFile', path: 'mode755', data: 'x', mode: 0o755 });
  add('stat of the 0755 file', { op: 'stat', path: 'mode755' });

  // E. directories.
  add('mkdir', { op: 'mkdir', path: 'd1' });
  add('mkdir of an existing directory', { op: 'mkdir', path: 'd1' });
  add('mkdir over an existing file', { op: 'mkdir', path: 'log' });
  add('mkdir in a missing parent', { op: 'mkdir', path: 'nope/x' });
  add('mkdir below a file', { op: 'mkdir', path: 'log/x' });
  for (const mode of [0o700, 0o755, 0o711, 0o777, 0o1777]) {
    add(`mkdir with mode ${mode.toString(8)}`, { op: 'mkdir', path: `dm${mode.toString(8)}`, mode });
    add(`stat of the ${mode.toString(8)} directory`, { op: 'stat', path: `dm${mode.toString(8)}` });
  }
  add('create a file in d1', { op: 'writeFile', path: 'd1/f', data: 'in d1' });
  add('readdir of d1', { op: 'readdir', path: 'd1' });
  add('readdir of a file', { op: 'readdir', path: 'log' });
  add('readdir of a missing directory', { op: 'readdir', path: 'nope' });
  add('rmdir of a non-empty directory', { op: 'rmdir', path: 'd1' });
  add('rmdir of a file', { op: 'rmdir', path: 'log' });
  add('rmdir of a missing directory', { op: 'rmdir', path: 'nope' });
  add('unlink of a directory', { op: 'unlink', path: 'd1' });
  add('unlink of a missing file', { op: 'unlink', path: 'nope' });
  add('unlink of a file in d1', { op: 'unlink', path: 'd1/f' });
  add('rmdir of the now empty d1', { op: 'rmdir', path: 'd1' });
  add('stat of the removed d1', { op: 'stat', path: 'd1' });
  add('mkdir -p of a deep path', { op: 'shell', command: 'mkdir -p deep/a/b/c && echo ok' });
  add('readdir of deep/a', { op: 'readdir', path: 'deep/a' });
  add('open a directory for writing', { op: 'open', path: 'deep', flags: 'w' });
  add('open a directory read-only', { op: 'open', path: 'deep', flags: 'r' });
  add('open through a file as a directory', { op: 'open', path: 'log/x', flags: 'r' });
  add('stat through a file as a directory', { op: 'stat', path: 'log/x' });

  // F. rename.
  add('rename a file', { op: 'writeFile', path: 'r1', data: 'rename me' });
  add('rename r1 to r2', { op: 'rename', from: 'r1', to: 'r2' });
  add('stat of the old name', { op: 'stat', path: 'r1' });
  add('readFile of the new name', { op: 'readFile', path: 'r2' });
  add('write the rename target', { op: 'writeFile', path: 'r3', data: 'to be replaced' });
  add('rename over an existing file', { op: 'rename', from: 'r2', to: 'r3' });
  add('readFile of the replaced file', { op: 'readFile', path: 'r3' });
  add('stat of the moved source', { op: 'stat', path: 'r2' });
  add('mkdir rename dirs', { op: 'shell', command: 'mkdir -p ra/sub rb rc && echo x > ra/sub/f && mkdir rfull && echo y > rfull/g && echo ok' });
  add('rename a directory', { op: 'rename', from: 'ra', to: 'ra2' });
  add('readFile inside the renamed directory', { op: 'readFile', path: 'ra2/sub/f' });
  add('rename a directory into another', { op: 'rename', from: 'ra2', to: 'rb/ra3' });
  add('readdir after moving a directory', { op: 'readdir', path: 'rb' });
  add('rename a file into a directory', { op: 'rename', from: 'r3', to: 'rb/r3' });
  add('rename a file over a directory', { op: 'rename', from: 'rb/r3', to: 'rc' });
  add('rename a directory over a file', { op: 'rename', from: 'rc', to: 'rb/r3' });
  add('rename a directory over an empty directory', { op: 'rename', from: 'rc', to: 'rb/ra3/sub2' });
  add('rename a directory over a non-empty directory', { op: 'rename', from: 'rb/ra3/sub2', to: 'rfull' });
  add('rename a directory into its own subdirectory', { op: 'rename', from: 'rb', to: 'rb/ra3/inside' });
  add('rename a missing file', { op: 'rename', from: 'nope', to: 'nope2' });
  add('rename a file onto itself', { op: 'rename', from: 'rb/r3', to: 'rb/r3' });
  add('rename into a missing directory', { op: 'rename', from: 'rb/r3', to: 'nope/r3' });
  add('rename to below a file', { op: 'rename', from: 'rb/r3', to: 'log/r3' });
  add('find lists the renamed tree', { op: 'shell', command: 'find rb rfull | sort' });

  // G. symlinks.
  add('symlink to a file', { op: 'symlink', target: 'mode755', path: 'sl1' });
  add('readlink', { op: 'readlink', path: 'sl1' });
  add('lstat of a symlink', { op: 'lstat', path: 'sl1' });
  add('stat follows a symlink', { op: 'stat', path: 'sl1' });
  add('readFile through a symlink', { op: 'readFile', path: 'sl1' });
  add('symlink over an existing name', { op: 'symlink', target: 'x', path: 'sl1' });
  add('readlink of a file', { op: 'readlink', path: 'log' });
  add('readlink of a missing path', { op: 'readlink', path: 'nope' });
  add('dangling symlink', { op: 'symlink', target: 'does/not/exist', path: 'dangling' });
  add('stat of a dangling symlink', { op: 'stat', path: 'dangling' });
  add('lstat of a dangling symlink', { op: 'lstat', path: 'dangling' });
  add('symlink to a directory', { op: 'symlink', target: 'deep/a', path: 'sldir' });
  add('readdir through a symlinked directory', { op: 'readdir', path: 'sldir' });
  add('symlink with a long target', { op: 'symlink', target: `${'t'.repeat(200)}/${'u'.repeat(200)}`, path: 'sllong' });
  add('readlink of a long target', { op: 'readlink', path: 'sllong' });
  add('unlink a symlink keeps the target', { op: 'unlink', path: 'sl1' });
  add('stat of the symlink target after unlink', { op: 'stat', path: 'mode755' });
  add('ln -sf replaces a symlink', { op: 'shell', command: 'ln -s a slf && ln -sf b slf && readlink slf' });

  // H. hard links.
  add('write a file to link', { op: 'writeFile', path: 'h1', data: 'linked content' });
  add('link', { op: 'link', from: 'h1', to: 'h2' });
  add('stat of the new link', { op: 'stat', path: 'h2' });
  add('readFile through the new link', { op: 'readFile', path: 'h2' });
  add('write through one name', { op: 'pwrite', path: 'h2', flags: 'r+', offset: 0, data: 'LINKED' });
  add('read through the other name', { op: 'readFile', path: 'h1' });
  add('unlink one name', { op: 'unlink', path: 'h1' });
  add('stat of the remaining name', { op: 'stat', path: 'h2' });
  add('readFile of the remaining name', { op: 'readFile', path: 'h2' });
  add('link to a directory', { op: 'link', from: 'deep', to: 'deeplink' });
  add('link onto an existing name', { op: 'link', from: 'h2', to: 'log' });
  add('link of a missing file', { op: 'link', from: 'nope', to: 'nope2' });

  // I. chmod.
  add('file for chmod', { op: 'writeFile', path: 'cm', data: 'chmod me' });
  for (const mode of [0o600, 0o644, 0o755, 0o700, 0o4755, 0o2755, 0o1777, 0o000, 0o444]) {
    add(`chmod ${mode.toString(8)}`, { op: 'chmod', path: 'cm', mode });
    add(`stat after chmod ${mode.toString(8)}`, { op: 'stat', path: 'cm' });
  }
  add('chmod a directory', { op: 'chmod', path: 'deep', mode: 0o700 });
  add('stat of the chmod-ed directory', { op: 'stat', path: 'deep' });
  add('chmod of a missing path', { op: 'chmod', path: 'nope', mode: 0o644 });

  // J. chown (as root).
  add('file for chown', { op: 'writeFile', path: 'co', data: 'chown me' });
  for (const [uid, gid] of [
    [1000, 1000],
    [NOBODY, NOBODY],
    [0, 0],
    [-1, 77],
    [42, -1],
  ]) {
    add(`chown ${uid}:${gid}`, { op: 'chown', path: 'co', uid, gid });
    add(`stat after chown ${uid}:${gid}`, { op: 'stat', path: 'co' });
  }
  add('chown of a missing path', { op: 'chown', path: 'nope', uid: 1, gid: 1 });

  // K. times.
  add('file for times', { op: 'writeFile', path: 'tm', data: 'times' });
  for (const [atimeMs, mtimeMs] of [
    [1_000_000_000_000, 1_500_000_000_000],
    [1_234_567_890_123, 987_654_321_456],
    [1_700_000_000_001, 1_700_000_000_999],
    [4_102_444_800_000, 4_102_444_800_500],
  ]) {
    add(`utimes ${atimeMs}/${mtimeMs}`, { op: 'utimes', path: 'tm', atimeMs, mtimeMs });
    add(`times after utimes ${atimeMs}/${mtimeMs}`, { op: 'times', path: 'tm', milliseconds: patchLevel < 1 });
  }
  const oneTimeOnly =
    'libfuse 2 high-level setattr calls utimens only when the kernel sets both times, so a change of atime or mtime alone is dropped before it reaches JS';
  add('touch -m -d sets only mtime', { op: 'shell', command: 'touch -m -d @1000000000 tm && stat -c %Y tm' }, stockOnly({ reason: oneTimeOnly, mount: { status: 0, stdout: '4102444800\n' } }));
  add('touch -a -d sets only atime', { op: 'shell', command: 'touch -a -d @1100000000 tm && stat -c %X:%Y tm' }, stockOnly({ reason: oneTimeOnly, mount: { status: 0, stdout: '4102444800:4102444800\n' } }));
  const nanoseconds = 'the stock fuse-native carries times as milliseconds both ways';
  const utimeNs = (atimeNs: string, mtimeNs: string): Step => ({
    op: 'shell',
    command: `python3 -c "import os; os.utime('tm', ns=(${atimeNs}, ${mtimeNs})); s = os.stat('tm'); print(s.st_atime_ns, s.st_mtime_ns)"`,
  });
  add('utimensat with nanoseconds keeps every digit', utimeNs('1200000000123456789', '1300000000987654321'), stockOnly({ reason: nanoseconds, mount: { status: 0, stdout: '1200000000123000000 1300000000987000000\n' } }));
  add('utimensat with 1 ns and 999,999,999 ns', utimeNs('1400000000000000001', '1500000000999999999'), stockOnly({ reason: nanoseconds, mount: { status: 0, stdout: '1400000000000000000 1500000000999000000\n' } }));
  add('futimens with UTIME_OMIT for atime (as tar -x does)', {
    op: 'shell',
    command: `python3 -c "import os; fd = os.open('tm', os.O_RDONLY); os.utime(fd, ns=(os.stat('tm').st_atime_ns, 1600000000000000042)); os.close(fd); s = os.stat('tm'); print(s.st_mtime_ns)"`,
  }, stockOnly({ reason: nanoseconds, mount: { status: 0, stdout: '1600000000000000000\n' } }));
  add('touch -d sets both', { op: 'shell', command: 'touch -d @1200000000.5 tm && stat -c %X:%Y tm' });
  add('touch sets both to now', { op: 'shell', command: 'touch tm && now=$(date +%s) && m=$(stat -c %Y tm) && a=$(stat -c %X tm) && [ $((now - m)) -lt 30 ] && [ $((now - a)) -lt 30 ] && echo recent' });
  add('utimes of a missing path', { op: 'utimes', path: 'nope', atimeMs: 0, mtimeMs: 0 });

  // L. extended attributes.
  add('file for xattrs', { op: 'writeFile', path: 'xa', data: 'xattrs' });
  add('setxattr', { op: 'xattr', action: 'set', path: 'xa', name: 'user.one', value: 'v1', flags: 0 });
  add('getxattr', { op: 'xattr', action: 'get', path: 'xa', name: 'user.one' });
  add('setxattr XATTR_CREATE on an existing name', { op: 'xattr', action: 'set', path: 'xa', name: 'user.one', value: 'v2', flags: 1 });
  add('setxattr XATTR_REPLACE on a missing name', { op: 'xattr', action: 'set', path: 'xa', name: 'user.two', value: 'v2', flags: 2 });
  add('setxattr XATTR_REPLACE on an existing name', { op: 'xattr', action: 'set', path: 'xa', name: 'user.one', value: 'replaced', flags: 2 });
  add('getxattr after replace', { op: 'xattr', action: 'get', path: 'xa', name: 'user.one' });
  add('setxattr XATTR_CREATE on a new name', { op: 'xattr', action: 'set', path: 'xa', name: 'user.two', value: 'second', flags: 1 });
  add('listxattr', { op: 'xattr', action: 'list', path: 'xa' });
  add('getxattr size query', { op: 'xattr', action: 'getsized', path: 'xa', name: 'user.one', size: 0 });
  add('getxattr into a too-small buffer', { op: 'xattr', action: 'getsized', path: 'xa', name: 'user.one', size: 3 });
  add('getxattr into an exact buffer', { op: 'xattr', action: 'getsized', path: 'xa', name: 'user.one', size: 8 });
  add('listxattr size query', { op: 'xattr', action: 'listsized', path: 'xa', size: 0 });
  add('listxattr into a too-small buffer', { op: 'xattr', action: 'listsized', path: 'xa', size: 4 });
  add('removexattr', { op: 'xattr', action: 'remove', path: 'xa', name: 'user.two' });
  add('removexattr of a missing name', { op: 'xattr', action: 'remove', path: 'xa', name: 'user.two' });
  add('getxattr of a missing name', { op: 'xattr', action: 'get', path: 'xa', name: 'user.missing' });
  add('setxattr on a directory', { op: 'xattr', action: 'set', path: 'deep', name: 'user.dir', value: 'd', flags: 0 });
  add('getxattr on a directory', { op: 'xattr', action: 'get', path: 'deep', name: 'user.dir' });
  add('setxattr of a 4000-byte value', { op: 'xattr', action: 'set', path: 'xa', name: 'user.big', value: 'b'.repeat(4000), flags: 0 });
  add('getxattr of a 4000-byte value', { op: 'xattr', action: 'getsized', path: 'xa', name: 'user.big', size: 4000 });
  add('getxattr on a missing path', { op: 'xattr', action: 'get', path: 'nope', name: 'user.one' });
  add('listxattr after changes', { op: 'xattr', action: 'list', path: 'xa' });

  // M. open handles, fsync, statfs, access.
  add('file for the unlinked handle', { op: 'writeFile', path: 'uh', data: 'original content' });
  add('unlinked file stays usable through its handle', { op: 'unlinkedHandle', path: 'uh' });
  add('the unlinked name is gone', { op: 'stat', path: 'uh' });
  // Metadata calls through a descriptor whose file was unlinked reach the inode (libfuse 2 sends
  // them for its hidden name).
  const unlinkedMetadata = (name: string, body: string): void =>
    add(name, {
      op: 'shell',
      command: `python3 -c "import os; fd = os.open('um', os.O_RDWR | os.O_CREAT, 0o644); os.write(fd, b'abc'); os.unlink('um'); ${body}; os.close(fd)"`,
    });
  unlinkedMetadata('fchmod and fchown of an unlinked open file', "os.fchmod(fd, 0o640); os.fchown(fd, 4242, 4343); s = os.fstat(fd); print(oct(s.st_mode & 0o7777), s.st_uid, s.st_gid, s.st_nlink)");
  unlinkedMetadata('futimens of an unlinked open file', 'os.utime(fd, ns=(1000000000000000000, 2000000000123000000)); print(os.fstat(fd).st_mtime_ns)');
  unlinkedMetadata('fsetxattr, fgetxattr, flistxattr, fremovexattr of an unlinked open file', "os.setxattr(fd, 'user.k', b'v'); print(os.getxattr(fd, 'user.k'), os.listxattr(fd)); os.removexattr(fd, 'user.k'); print(os.listxattr(fd))");
  add('readdir does not show unlinked open files', { op: 'readdir', path: '.' });
  add('fsync and fdatasync', { op: 'fsync', path: 'synced', data: { size: 200000, seed: 5 } });
  add('statfs', { op: 'statfs', path: '.' });
  add('access F_OK', { op: 'access', path: 'synced', mode: 0 });
  add('access R_OK|W_OK', { op: 'access', path: 'synced', mode: 6 });
  add('access X_OK on a 0644 file (root)', { op: 'access', path: 'synced', mode: 1 });
  add('access of a missing path', { op: 'access', path: 'nope', mode: 0 });
  add('ftruncate shrink', { op: 'ftruncate', path: 'synced', size: 1000 });
  add('ftruncate grow', { op: 'ftruncate', path: 'synced', size: 9000 });
  add('readFile after ftruncate', { op: 'readFile', path: 'synced' });

  // N. names.
  add('a 255-byte name', { op: 'writeFile', path: 'n'.repeat(255), data: 'long name' });
  add('a 256-byte name', { op: 'writeFile', path: 'n'.repeat(256), data: 'too long' });
  add('mkdir with a 256-byte name', { op: 'mkdir', path: 'm'.repeat(256) });
  add('names with spaces and unicode', { op: 'writeFile', path: 'a name with spaces é ☃', data: 'unicode' });
  add('readFile of a unicode name', { op: 'readFile', path: 'a name with spaces é ☃' });

  // O. ordinary tools.
  add('cp -a a tree', { op: 'shell', command: 'cp -a deep deepcopy && find deepcopy | sort' });
  add('mv a tree', { op: 'shell', command: 'mv deepcopy deepmoved && ls deepmoved' });
  add('rm -rf a tree', { op: 'shell', command: 'rm -rf deepmoved && ls' });
  add('cat of a concatenation', { op: 'shell', command: 'cat size-100 size-1 | sha256sum' });
  add('sed -i edits in place', { op: 'shell', command: 'printf "a\\nb\\n" > sed.txt && sed -i s/a/A/ sed.txt && cat sed.txt' });
  add('ls -la names and types', { op: 'shell', command: "ls -la deep | awk '{print substr($1,1,1), $NF}'" });

  // O2. several processes at once.
  add('concurrent O_APPEND writers lose nothing', {
    op: 'shell',
    command: '(for i in $(seq 150); do echo aaaaaaa >> conc; done) & (for i in $(seq 150); do echo bbbbbbb >> conc; done) & wait; wc -c < conc; grep -c a conc; grep -c b conc',
  });
  add('concurrent writers of different files', {
    op: 'shell',
    command: 'for n in 1 2 3 4; do (seq 1 5000 > par$n) & done; wait; cat par1 par2 par3 par4 | sha256sum',
  });
  add('a reader during a writer sees a prefix of the final content', {
    op: 'shell',
    command: '(seq 1 30000 > grow) & sleep 0.05; cat grow > part; wait; n=$(wc -c < part); head -c $n grow | cmp -s - part && echo prefix; seq 1 30000 | cmp - grow && echo same',
  });

  // P. permissions as uid/gid 65534 (nobody).
  add('private directory', { op: 'mkdir', path: 'priv', mode: 0o755 });
  add('secret file', { op: 'writeFile', path: 'priv/secret', data: 'secret', mode: 0o600 });
  add('public file', { op: 'writeFile', path: 'pub', data: 'public', mode: 0o644 });
  add('shared directory', { op: 'mkdir', path: 'shared' });
  add('chmod shared 0777', { op: 'chmod', path: 'shared', mode: 0o777 });
  add('sticky directory', { op: 'mkdir', path: 'sticky' });
  add('chmod sticky 1777', { op: 'chmod', path: 'sticky', mode: 0o1777 });
  add('root file in the sticky directory', { op: 'writeFile', path: 'sticky/rootfile', data: 'root', mode: 0o666 });
  add('closed directory', { op: 'mkdir', path: 'closed', mode: 0o700 });
  add('file in the closed directory', { op: 'writeFile', path: 'closed/inner', data: 'inner' });
  add('world-writable file', { op: 'writeFile', path: 'ww', data: 'world', mode: 0o666 });
  add('chmod ww 0666', { op: 'chmod', path: 'ww', mode: 0o666 });
  const asNobody = (name: string, step: Step, extra: Partial<ConformanceCase> = {}): void => add(`as nobody: ${name}`, step, { user: 'nobody', ...extra });
  asNobody('read a 0600 root file', { op: 'readFile', path: 'priv/secret' });
  asNobody('open a 0600 root file', { op: 'open', path: 'priv/secret', flags: 'r' });
  asNobody('read a 0644 root file', { op: 'readFile', path: 'pub' });
  asNobody('write a 0644 root file', { op: 'writeFile', path: 'pub', data: 'hacked' });
  asNobody('truncate a 0644 root file', { op: 'truncate', path: 'pub', size: 0 });
  asNobody('create in a 0755 root directory', { op: 'writeFile', path: 'priv/new', data: 'x' });
  asNobody('mkdir in a 0755 root directory', { op: 'mkdir', path: 'priv/newdir' });
  asNobody('unlink in a 0755 root directory', { op: 'unlink', path: 'priv/secret' });
  asNobody('rename in a 0755 root directory', { op: 'rename', from: 'priv/secret', to: 'priv/moved' });
  asNobody('chmod a root file', { op: 'chmod', path: 'pub', mode: 0o777 });
  asNobody('chown a root file', { op: 'chown', path: 'pub', uid: NOBODY, gid: NOBODY });
  asNobody('utimes with explicit times on a root file', { op: 'utimes', path: 'ww', atimeMs: 1000, mtimeMs: 1000 });
  asNobody('write a 0666 root file', { op: 'pwrite', path: 'ww', flags: 'r+', offset: 0, data: 'WORLD' });
  asNobody('read the 0666 file back', { op: 'readFile', path: 'ww' });
  asNobody('readdir of a 0700 root directory', { op: 'readdir', path: 'closed' });
  asNobody('stat inside a 0700 root directory', { op: 'stat', path: 'closed/inner' });
  asNobody('readdir of a 0755 root directory', { op: 'readdir', path: 'priv' });
  asNobody('access W_OK on a 0644 root file', { op: 'access', path: 'pub', mode: 2 });
  asNobody('access R_OK on a 0644 root file', { op: 'access', path: 'pub', mode: 4 });
  asNobody('unlink a root file in a sticky directory', { op: 'unlink', path: 'sticky/rootfile' });
  asNobody('rename a root file in a sticky directory', { op: 'rename', from: 'sticky/rootfile', to: 'sticky/mine' });
  asNobody('setxattr on a 0644 root file', { op: 'xattr', action: 'set', path: 'pub', name: 'user.n', value: 'v', flags: 0 });
  asNobody('create in a 0777 directory', { op: 'writeFile', path: 'shared/mine', data: 'mine' });
  const callerIds = 'the stock fuse-native does not pass the caller uid/gid (fuse_get_context) to JS: new entries are owned by the mount owner';
  asNobody('stat of a file nobody created', { op: 'stat', path: 'shared/mine' }, stockOnly({ reason: callerIds, mount: { type: 'file', perm: '644', uid: 0, gid: 0, size: 4, nlink: 1 } }));
  asNobody('read back a file nobody created', { op: 'readFile', path: 'shared/mine' });
  asNobody('mkdir in a 0777 directory', { op: 'mkdir', path: 'shared/mydir' });
  asNobody('stat of a directory nobody made', { op: 'stat', path: 'shared/mydir' }, stockOnly({ reason: callerIds, mount: { type: 'directory', perm: '755', uid: 0, gid: 0 } }));
  asNobody('symlink in a 0777 directory', { op: 'symlink', target: 'mine', path: 'shared/mylink' });
  asNobody('lstat of a symlink nobody made', { op: 'lstat', path: 'shared/mylink' }, stockOnly({ reason: callerIds, mount: { type: 'symlink', perm: '777', uid: 0, gid: 0, size: 4, nlink: 1 } }));
  // A set-group-ID directory gives its group to what is made in it, and its bit to new directories.
  add('set-group-ID directory', { op: 'mkdir', path: 'sgid', mode: 0o777 });
  add('chown the set-group-ID directory to group 4321', { op: 'chown', path: 'sgid', uid: 0, gid: 4321 });
  add('chmod 2777 the set-group-ID directory', { op: 'chmod', path: 'sgid', mode: 0o2777 });
  asNobody('create in a set-group-ID directory', { op: 'writeFile', path: 'sgid/f', data: 'f' });
  asNobody('stat of a file made in a set-group-ID directory', { op: 'stat', path: 'sgid/f' }, stockOnly({ reason: callerIds, mount: { type: 'file', perm: '644', uid: 0, gid: 0, size: 1, nlink: 1 } }));
  asNobody('mkdir in a set-group-ID directory', { op: 'mkdir', path: 'sgid/d' });
  asNobody('stat of a directory made in a set-group-ID directory', { op: 'stat', path: 'sgid/d' }, stockOnly({ reason: callerIds, mount: { type: 'directory', perm: '755', uid: 0, gid: 0 } }));
  add('root creates in the set-group-ID directory', { op: 'writeFile', path: 'sgid/rootfile', data: 'r' });
  add('stat of root\'s file in the set-group-ID directory', { op: 'stat', path: 'sgid/rootfile' }, stockOnly({ reason: callerIds, mount: { type: 'file', perm: '644', uid: 0, gid: 0, size: 1, nlink: 1 } }));
  return cases;
}
