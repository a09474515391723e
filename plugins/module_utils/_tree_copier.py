# Copyright: (c) 2026, pidock.stack maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tree_manifest's copy mode: copy a tree once while hashing it, then verify the copy by reading it back.

Source files are opened below the source root with O_NOFOLLOW on every path component and must be
the inode the scan saw (_manifest._open_below), so a tree owner who swaps entries between scan and
copy makes the copy fail instead of leading root outside the tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from ansible_collections.pidock.stack.plugins.module_utils._manifest import (
    _CHUNK,
    _compare,
    _finish,
    _hash_fd,
    _hash_file,
    _hash_many,
    _hash_scan,
    _map_id,
    _open_below,
    _raw_of,
    _Scan,
    _scan,
    _show,
    _Swapped,
    _walk,
)
from ansible_collections.pidock.stack.plugins.module_utils._progress import ProgressMeter
from ansible_collections.pidock.stack.plugins.module_utils._stat_cache import (
    _cached,
    _load_stat_cache,
    _stat_cache_text,
    _stat_key,
)

_PARTIAL = b".pidock-partial"
_PARTIAL_PATTERN = ".pidock-partial"


class _CopyError(Exception):
    """A filesystem operation of the copy failed; the message names the path and the operation."""


class _Vanished(_CopyError):
    """A file the scan listed was gone when the copy opened it (only raised with vanished='skip')."""


@dataclass
class _CopyStats:
    """What a copy did (or, in check mode, would do) to the target tree."""

    files_copied: int = 0
    bytes_copied: int = 0
    files_unchanged: int = 0
    links: int = 0
    specials: int = 0
    dirs_created: int = 0
    removed: int = 0
    metadata_fixed: int = 0
    recopied: int = 0
    hashes_reused: int = 0
    vanished: int = 0
    copy_seconds: float = 0.0
    verify_seconds: float = 0.0

    def changes(self) -> int:
        return (
            self.files_copied
            + self.links
            + self.specials
            + self.dirs_created
            + self.removed
            + self.metadata_fixed
            + self.recopied
        )


def _same_kind(a: os.stat_result, b: os.stat_result) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return False
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        return a.st_rdev == b.st_rdev
    return True


def _quick_match(cur: os.stat_result, st: os.stat_result) -> bool:
    """rsync's quick check: a regular file of the same size and modification time (ns) is taken as current."""
    return stat.S_ISREG(cur.st_mode) and cur.st_size == st.st_size and cur.st_mtime_ns == st.st_mtime_ns


def _same_inode(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _under(rel: bytes, dirs: set[bytes]) -> bool:
    """Whether one of the ancestors of ``rel`` is in ``dirs``."""
    head = os.path.dirname(rel)
    while head:
        if head in dirs:
            return True
        head = os.path.dirname(head)
    return False


def _remove(path: bytes) -> None:
    """Remove a file, link, special or whole directory, never following symlinks."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        _rmtree(path)
    else:
        os.unlink(path)


def _rmtree(path: bytes) -> None:
    with os.scandir(path) as it:
        children = list(it)
    for child in children:
        if child.is_dir(follow_symlinks=False):
            _rmtree(child.path)
        else:
            os.unlink(child.path)
    os.rmdir(path)


def _stream(
    src_fd: int,
    tmp: bytes,
    st: os.stat_result,
    owner: tuple[int, int] | None,
    meter: ProgressMeter | None = None,
) -> str:
    """Copy the open ``src_fd`` into a new ``tmp`` (0600 until done) in 1 MiB chunks, hashing the bytes written.

    A leftover at ``tmp`` (an interrupted run's partial file) is unlinked first, never written through.
    With ``meter``, every chunk written advances it by its bytes (the caller counts the file when done).
    """
    digest = hashlib.sha256()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    dst_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            count = os.readv(src_fd, [buf])
            if not count:
                break
            chunk = view[:count]
            digest.update(chunk)
            done = 0
            while done < count:
                done += os.write(dst_fd, chunk[done:])
            if meter is not None:
                meter.advance(nbytes=count)
        if owner is not None:
            os.fchown(dst_fd, *owner)
        os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
        os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(dst_fd)
    return digest.hexdigest()


class _TreeCopier:
    """Copy ``source`` into ``target`` once, hashing the source as it is read; see tree_manifest's copy_to."""

    def __init__(
        self,
        source: str | bytes,
        target: str | bytes,
        *,
        ownership: bool = False,
        uid_map: dict[str, int] | None = None,
        gid_map: dict[str, int] | None = None,
        excludes: Iterable[str] = (),
        jobs: int = 1,
        delete: bool = False,
        sync: bool = True,
        check_mode: bool = False,
        preserve_owner: bool | None = None,
        ignore: Iterable[str] = (),
        limit: int = 100,
        stat_cache: str | None = None,
        changed_since: float | None = None,
        meter: ProgressMeter | None = None,
        vanished: str = "fail",
    ) -> None:
        if vanished not in ("fail", "skip"):
            raise ValueError(f"vanished must be fail or skip, not {vanished!r}")
        self.source = os.fsencode(source)
        self.target = os.fsencode(target)
        self.ownership = ownership
        self.uid_map = uid_map or {}
        self.gid_map = gid_map or {}
        self.patterns = [*excludes, _PARTIAL_PATTERN]
        self.jobs = max(1, jobs)
        self.delete = delete
        self.sync = sync
        self.check = check_mode
        self.ignore = list(ignore)
        self.limit = limit
        # like tar and rsync -a: owners are kept only when we may set them
        self.preserve_owner = os.geteuid() == 0 if preserve_owner is None else preserve_owner
        self.stats = _CopyStats()
        self.existing: dict[bytes, os.stat_result] = {}
        self.partials: set[bytes] = set()  # .pidock-partial directories to remove at the end
        self.stale: set[bytes] = set()  # those of them left by an interrupted run
        self.quick: set[int] = set()  # files left alone by the quick check (size + mtime)
        # Stat caches of the last verified copy (see stat_cache): hashes of files untouched since are reused.
        self.stat_cache = stat_cache
        self.src_cache, self.dst_cache = _load_stat_cache(stat_cache) if stat_cache else ({}, {})
        self.stat_cache_text: str | None = None  # what to write to stat_cache once the copy is verified
        # Refuse to write when an entry of the target changed (its ctime) after this time (see guard_file).
        self.changed_since = changed_since
        # Progress of the phases (scan, copy, sync, verify) for tree_manifest's progress_file; None: not reported.
        self.meter = meter
        # A file listed by the scan but gone when opened: fail the copy, or leave it out (a live tree).
        self.skip_vanished = vanished == "skip"
        self.vanished: set[int] = set()  # scan indexes of the files left out that way

    # -- helpers -------------------------------------------------------------------------

    def _src(self, rel: bytes) -> bytes:
        return self.source if rel == b"." else os.path.join(self.source, rel)

    def _dst(self, rel: bytes) -> bytes:
        return self.target if rel == b"." else os.path.join(self.target, rel)

    def _owner(self, st: os.stat_result) -> tuple[int, int] | None:
        if not self.preserve_owner:
            return None
        return _map_id(st.st_uid, self.uid_map), _map_id(st.st_gid, self.gid_map)

    def _partial_for(self, rel: bytes) -> bytes:
        """The partial file of ``rel``: <dir>/.pidock-partial/<name>, the directory made on demand."""
        head, name = os.path.split(rel)
        directory = os.path.join(self._dst(head or b"."), _PARTIAL)
        if directory not in self.partials:
            try:
                os.mkdir(directory, 0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                raise self._fail("create", directory, exc) from exc
            self.partials.add(directory)
        return os.path.join(directory, name)

    def _kept_dirs(self) -> set[bytes]:
        return {self._dst(r) for r, st in self.existing.items() if stat.S_ISDIR(st.st_mode)}

    def _fail(self, action: str, path: bytes, exc: OSError) -> _CopyError:
        return _CopyError(f"{action} {_show(path)}: {exc.strerror or exc}")

    def _phase(self, name: str, scan: _Scan | None = None, indexes: Iterable[int] = ()) -> None:
        """Start a progress phase; its totals are the files ``indexes`` of ``scan`` (none: unknown totals)."""
        if self.meter is None:
            return
        if scan is None:
            self.meter.phase(name)
            return
        chosen = list(indexes)
        self.meter.phase(name, len(chosen), sum(scan.stats[i].st_size for i in chosen))

    def _advance(self, files: int = 0, nbytes: int = 0, read: bool = True) -> None:
        if self.meter is not None:
            self.meter.advance(files, nbytes, read)

    # -- phases --------------------------------------------------------------------------

    def _prepare_root(self) -> None:
        try:
            st = os.lstat(self.target)
        except FileNotFoundError:
            parent = os.path.dirname(self.target.rstrip(b"/")) or b"."
            if not os.path.isdir(parent):
                raise _CopyError(f"copy_to {_show(self.target)}: its parent directory does not exist") from None
            self.stats.dirs_created += 1
            if not self.check:
                try:
                    os.mkdir(self.target, 0o700)
                except OSError as exc:
                    raise self._fail("create", self.target, exc) from exc
            return
        if not stat.S_ISDIR(st.st_mode):
            raise _CopyError(f"copy_to {_show(self.target)} exists and is not a directory")
        changed: list[bytes] = []
        for rel, tst in _walk(self.target, self.patterns):
            self.existing[rel] = tst
            if stat.S_ISREG(tst.st_mode):
                self._advance(1, tst.st_size, read=False)
            if self.changed_since is not None and tst.st_ctime > self.changed_since:
                changed.append(rel)
            if stat.S_ISDIR(tst.st_mode):
                partial = os.path.join(self._dst(rel), _PARTIAL)
                if os.path.isdir(partial) and not os.path.islink(partial):
                    self.partials.add(partial)
        if changed:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.changed_since))
            shown = ", ".join(_show(r) for r in sorted(changed)[:5]) + (", ..." if len(changed) > 5 else "")
            raise _CopyError(
                f"{len(changed)} entr{'y' if len(changed) == 1 else 'ies'} of {_show(self.target)} changed after "
                f"{when} (guard_file), written by something other than this copy: {shown}. Nothing was written"
            )

    def _prune(self, scan: _Scan) -> None:
        """Remove entries of the target whose type differs from the source, and strays when delete is on."""
        wanted = dict(zip(scan.raws, scan.stats, strict=True))
        gone: set[bytes] = set()
        for rel in sorted(self.existing):
            if rel == b".":
                continue
            if _under(rel, gone):
                self.stats.removed += 1
                continue
            src_st = wanted.get(rel)
            if src_st is None and not self.delete:
                continue
            if src_st is not None and _same_kind(src_st, self.existing[rel]):
                continue
            gone.add(rel)
            self.stats.removed += 1
            if not self.check:
                try:
                    _remove(self._dst(rel))
                except OSError as exc:
                    raise self._fail("remove", self._dst(rel), exc) from exc
        if gone:
            self.existing = {r: st for r, st in self.existing.items() if r not in gone and not _under(r, gone)}
            self.partials = {p for p in self.partials if os.path.dirname(p) in self._kept_dirs()}
        self.stale = set(self.partials)

    def _make_dirs(self, scan: _Scan) -> None:
        for rel, st in zip(scan.raws, scan.stats, strict=True):
            if rel == b"." or not stat.S_ISDIR(st.st_mode) or rel in self.existing:
                continue
            self.stats.dirs_created += 1
            if not self.check:
                try:
                    os.mkdir(self._dst(rel), 0o700)
                except OSError as exc:
                    raise self._fail("create directory", self._dst(rel), exc) from exc

    def _meta_wrong(self, st: os.stat_result, cur: os.stat_result, times: bool) -> tuple[bool, bool, bool]:
        """Which of owner, mode and (with ``times``) mtime of the target entry differ from the source's."""
        owner = self._owner(st)
        wrong_owner = owner is not None and (cur.st_uid, cur.st_gid) != owner
        wrong_mode = not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(cur.st_mode) != stat.S_IMODE(st.st_mode)
        wrong_time = times and cur.st_mtime_ns != st.st_mtime_ns
        return wrong_owner, wrong_mode, wrong_time

    def _fix_meta(self, rel: bytes, st: os.stat_result, cur: os.stat_result, *, times: bool = False) -> bool:
        """Set mode, owner (and with ``times`` the mtime) of an existing target entry when they differ."""
        wrong_owner, wrong_mode, wrong_time = self._meta_wrong(st, cur, times)
        if not (wrong_owner or wrong_mode or wrong_time):
            return False
        if self.check:
            return True
        owner = self._owner(st)
        is_link = stat.S_ISLNK(st.st_mode)
        path = self._dst(rel)
        try:
            if wrong_owner and owner is not None:
                os.chown(path, *owner, follow_symlinks=False)
            if wrong_mode or (wrong_owner and not is_link):  # chown clears set-id bits
                os.chmod(path, stat.S_IMODE(st.st_mode))
            if wrong_time:
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        except OSError as exc:
            raise self._fail("set metadata of", path, exc) from exc
        return True

    def _open_src(self, rel: bytes, st: os.stat_result) -> int:
        """A descriptor of the source file the scan saw; _CopyError when anything below the root was swapped."""
        try:
            return _open_below(self.source, rel, expect=st)
        except _Swapped as exc:
            raise _CopyError(
                f"{_show(self._src(rel))} changed during the copy: {exc.strerror}; nothing outside "
                f"{_show(self.source)} was read. Stop whatever writes to the tree and run again."
            ) from exc
        except FileNotFoundError as exc:
            if self.skip_vanished:
                raise _Vanished(f"{_show(self._src(rel))} is gone") from exc
            raise self._fail("read", self._src(rel), exc) from exc
        except OSError as exc:
            raise self._fail("read", self._src(rel), exc) from exc

    def _hash_src(self, rel: bytes, st: os.stat_result) -> str:
        fd = self._open_src(rel, st)
        try:
            return _hash_fd(fd, self.meter)
        except OSError as exc:
            raise self._fail("read", self._src(rel), exc) from exc
        finally:
            os.close(fd)

    def _file_job(self, rel: bytes, st: os.stat_result, force: bool) -> tuple[str, str]:
        """Copy one regular file (or only hash it when the quick check says the target is current).

        A file the quick check keeps is not even read when the stat cache vouches for its hash.
        Source files are opened below the root with O_NOFOLLOW on every component and must be the
        inode the scan saw (_open_below).
        """
        cur = None if force else self.existing.get(rel)
        if cur is not None and _quick_match(cur, st):
            action = "fixed" if self._fix_meta(rel, st, cur) else "unchanged"
            cached = _cached(self.src_cache, rel, st)
            if cached is not None:
                return cached, action + "+cached"
            return self._hash_src(rel, st), action
        if self.check:
            return self._hash_src(rel, st), "copied"
        tmp = self._partial_for(rel)
        src_fd = self._open_src(rel, st)
        try:
            digest = _stream(src_fd, tmp, st, self._owner(st), self.meter)
        except OSError as exc:
            raise self._fail("copy", self._src(rel), exc) from exc
        finally:
            os.close(src_fd)
        try:
            os.rename(tmp, self._dst(rel))
        except OSError as exc:
            raise self._fail("rename into place", self._dst(rel), exc) from exc
        return digest, "copied"

    def _copy_files(self, scan: _Scan, leaders: list[int]) -> dict[int, str]:
        """Copy the files (hardlink leaders and single files) in a pool, biggest first."""
        order = sorted(leaders, key=lambda i: -scan.stats[i].st_size)
        digests: dict[int, str] = {}

        def job(index: int) -> tuple[int, str, str]:
            try:
                digest, action = self._file_job(scan.raws[index], scan.stats[index], force=False)
            except _Vanished:
                self._advance(1)
                return index, "", "vanished"
            if action.endswith("+cached"):  # not read: done, but not part of the rate
                self._advance(1, scan.stats[index].st_size, read=False)
            else:
                self._advance(1)
            return index, digest, action

        if self.jobs > 1 and len(order) > 1:
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                outcomes = list(pool.map(job, order))
        else:
            outcomes = [job(i) for i in order]
        for index, digest, outcome in outcomes:
            if outcome == "vanished":
                self.vanished.add(index)
                continue
            digests[index] = digest
            action, _plus, cached = outcome.partition("+")
            self.stats.hashes_reused += bool(cached)
            if action == "copied":
                self.stats.files_copied += 1
                self.stats.bytes_copied += scan.stats[index].st_size
            else:
                self.quick.add(index)
                self.stats.files_unchanged += 1
                if action == "fixed":
                    self.stats.metadata_fixed += 1
        return digests

    def _link_followers(self, scan: _Scan, groups: list[list[int]], copied: set[int]) -> None:
        """Hardlink the other members of each group to the copy of its leader."""
        for members in groups:
            leader, *followers = members
            lead_dst = self._dst(scan.raws[leader])
            if self.check:
                lead_st = None if leader in copied else self.existing.get(scan.raws[leader])
            else:
                lead_st = os.lstat(lead_dst)
            for index in followers:
                rel = scan.raws[index]
                cur = self.existing.get(rel)
                if cur is not None and lead_st is not None and _same_inode(cur, lead_st):
                    self.stats.files_unchanged += 1
                    continue
                self.stats.links += 1
                if self.check:
                    continue
                tmp = self._partial_for(rel)
                try:
                    if os.path.lexists(tmp):
                        os.unlink(tmp)
                    os.link(lead_dst, tmp, follow_symlinks=False)
                    os.rename(tmp, self._dst(rel))
                except OSError as exc:
                    raise self._fail("hardlink", self._dst(rel), exc) from exc

    def _place(self, rel: bytes, make: Any) -> None:
        """Create an entry in the partial directory with ``make(tmp)`` and rename it over the target."""
        tmp = self._partial_for(rel)
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            make(tmp)
            os.rename(tmp, self._dst(rel))
        except OSError as exc:
            raise self._fail("create", self._dst(rel), exc) from exc

    def _copy_symlink(self, rel: bytes, st: os.stat_result) -> None:
        try:
            target = os.readlink(self._src(rel))
        except OSError as exc:
            raise self._fail("read link", self._src(rel), exc) from exc
        cur = self.existing.get(rel)
        if cur is not None and os.readlink(self._dst(rel)) == target:
            if self._fix_meta(rel, st, cur):
                self.stats.metadata_fixed += 1
            return
        self.stats.links += 1
        if self.check:
            return
        owner = self._owner(st)

        def make(tmp: bytes) -> None:
            os.symlink(target, tmp)
            if owner is not None:
                os.chown(tmp, *owner, follow_symlinks=False)
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

        self._place(rel, make)

    def _copy_special(self, rel: bytes, st: os.stat_result) -> None:
        cur = self.existing.get(rel)
        if cur is not None:  # same kind (and device numbers): _prune removed the rest
            if self._fix_meta(rel, st, cur):
                self.stats.metadata_fixed += 1
            return
        self.stats.specials += 1
        if self.check:
            return
        owner = self._owner(st)

        def make(tmp: bytes) -> None:
            os.mknod(tmp, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev)
            if owner is not None:
                os.chown(tmp, *owner, follow_symlinks=False)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

        self._place(rel, make)

    def _clean_partials(self) -> None:
        """Drop the partial directories; anything still in them is a leftover of an interrupted run."""
        for directory in sorted(self.partials, reverse=True):
            try:
                with os.scandir(directory) as it:
                    leftovers = [e.path for e in it]
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._fail("read", directory, exc) from exc
            self.stats.removed += directory in self.stale  # one per leftover directory, whatever it held
            if self.check:
                continue
            try:
                for path in leftovers:
                    _remove(path)
                os.rmdir(directory)
            except OSError as exc:
                raise self._fail("remove", directory, exc) from exc

    def _dir_metadata(self, scan: _Scan, *, count: bool = True) -> None:
        """Modes, owners and mtimes of directories, deepest first (after their contents changed)."""
        dirs = [i for i, st in enumerate(scan.stats) if stat.S_ISDIR(st.st_mode)]
        for index in reversed(dirs):
            rel, st = scan.raws[index], scan.stats[index]
            before = self.existing.get(rel)
            if count and before is not None and any(self._meta_wrong(st, before, True)):
                self.stats.metadata_fixed += 1  # counted against the state before the run
            if self.check:
                continue
            try:
                cur = os.lstat(self._dst(rel))
            except OSError as exc:
                raise self._fail("stat", self._dst(rel), exc) from exc
            self._fix_meta(rel, st, cur, times=True)

    # -- the whole run ---------------------------------------------------------------------

    def run(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Copy, sync and read back. Returns (source manifest, comparison or None when not verified)."""
        if not os.path.isdir(self.source):
            raise NotADirectoryError(f"{_show(self.source)} is not a directory")
        src_real, dst_real = os.path.realpath(self.source), os.path.realpath(self.target)
        if src_real == dst_real or dst_real.startswith(src_real + b"/") or src_real.startswith(dst_real + b"/"):
            raise _CopyError(f"copy_to {_show(self.target)} and path {_show(self.source)} overlap")
        started = time.monotonic()
        self._phase("scan")
        scan = _scan(
            self.source,
            self.patterns,
            ownership=self.ownership,
            uid_map=self.uid_map,
            gid_map=self.gid_map,
            meter=self.meter,
        )
        groups = [sorted(m, key=lambda i: scan.raws[i]) for m in scan.inodes.values() if len(m) > 1]
        try:
            try:
                self._copy_all(scan, groups)
            except OSError as exc:  # the phases name what they do; this is only a safety net
                raise _CopyError(str(exc)) from exc
        except _CopyError:
            if not self.check:
                for directory in self.partials:  # keep those holding partial files, for a resume
                    with contextlib.suppress(OSError):
                        os.rmdir(directory)
            raise
        if self.sync and not self.check:
            self._phase("sync")
            os.sync()
        self.stats.copy_seconds = round(time.monotonic() - started, 3)
        source = _finish(scan, ownership=self.ownership, hashed=True)

        if self.check and self.stats.changes():
            # the copy is not there to be verified yet; only predict what a content check would recopy
            self.stats.recopied = self._count_stale(scan)
            return source, None
        started = time.monotonic()
        comparison = self._verify(scan, source, groups)
        self.stats.verify_seconds = round(time.monotonic() - started, 3)
        return source, comparison

    def _count_stale(self, scan: _Scan) -> int:
        """How many files kept by the quick check hold other bytes than the source (read-only)."""
        quick = sorted(self.quick)
        self._phase("verify", scan, quick)
        digests = _hash_many([self._dst(scan.raws[i]) for i in quick], self.jobs, self.meter)
        return sum(digest != scan.records[i]["sha256"] for i, digest in zip(quick, digests, strict=True))

    def _copy_all(self, scan: _Scan, groups: list[list[int]]) -> None:
        """Every write of the copy: prune, directories, files, links, specials, cleanup, directory metadata."""
        self._prepare_root()
        self._prune(scan)
        self._make_dirs(scan)
        followers = {i for members in groups for i in members[1:]}
        leaders = [i for i in scan.files if i not in followers]
        self._phase("copy", scan, leaders)
        digests = self._copy_files(scan, leaders)
        if self.vanished:
            digests = self._leave_out_vanished(scan, groups, digests)
            leaders = [i for i in scan.files if i not in {m for members in groups for m in members[1:]}]
        copied = {i for i in leaders if i not in self.quick}
        self._link_followers(scan, groups, copied)
        for members in groups:
            for index in members[1:]:
                digests[index] = digests[members[0]]
        for index, digest in digests.items():
            scan.records[index]["sha256"] = digest

        for index, st in enumerate(scan.stats):
            if stat.S_ISLNK(st.st_mode):
                self._copy_symlink(scan.raws[index], st)
            elif not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                self._copy_special(scan.raws[index], st)
        self._clean_partials()
        self._dir_metadata(scan)

    def _leave_out_vanished(self, scan: _Scan, groups: list[list[int]], digests: dict[int, str]) -> dict[int, str]:
        """Drop the files that were gone when opened from the scan (in place) and their copies from the target.

        The scan is then what the tree holds without them, as if it had been listed a moment later; the
        indexes of ``groups``, self.quick and the returned digests follow. A hardlinked file that vanished
        still fails the copy: its other names may still be there.
        """
        grouped = {i for members in groups for i in members}
        linked = sorted(i for i in self.vanished if i in grouped)
        if linked:
            raise _CopyError(
                f"{_show(self._src(scan.raws[linked[0]]))} (hard-linked) was gone when the copy opened it. "
                "Stop whatever writes to the tree and run again."
            )
        for index in sorted(self.vanished):
            rel = scan.raws[index]
            if rel in self.existing and self.delete:
                self.stats.removed += 1
                if not self.check:
                    try:
                        _remove(self._dst(rel))
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        raise self._fail("remove", self._dst(rel), exc) from exc
                del self.existing[rel]
        self.stats.vanished = len(self.vanished)
        keep = [i for i in range(len(scan.records)) if i not in self.vanished]
        new = {old: pos for pos, old in enumerate(keep)}
        for index in self.vanished:
            scan.counts["file"] -= 1
            scan.total -= scan.stats[index].st_size
        scan.records[:] = [scan.records[i] for i in keep]
        scan.raws[:] = [scan.raws[i] for i in keep]
        scan.stats[:] = [scan.stats[i] for i in keep]
        scan.files[:] = [new[i] for i in scan.files if i in new]
        scan.inodes = {key: [new[i] for i in members] for key, members in scan.inodes.items() if members[0] in new}
        groups[:] = [[new[i] for i in members] for members in groups]
        self.quick = {new[i] for i in self.quick}
        self.vanished = set()
        return {new[i]: digest for i, digest in digests.items()}

    def _verify(self, scan: _Scan, source: dict[str, Any], groups: list[list[int]]) -> dict[str, Any]:
        """Read the copy back, compare; recopy quick-checked files whose content differs, and compare again."""
        self._phase("verify")  # totals unknown while the copy is walked
        tscan = _scan(
            self.target, self.patterns, ownership=self.ownership, uid_map=None, gid_map=None, meter=self.meter
        )
        self._phase("verify", tscan, tscan.files)
        self.stats.hashes_reused += _hash_scan(tscan, self.jobs, self.dst_cache, self.meter)
        target = _finish(tscan, ownership=self.ownership, hashed=True)
        comparison = _compare(source, target, limit=1 << 62)
        suspects = {
            _raw_of(d) for d in comparison["differences"] if d["kind"] == "changed" and "sha256" in d.get("fields", [])
        }
        redo = [i for i in self.quick if scan.raws[i] in suspects]
        if not redo or self.check:
            self.stats.recopied = len(redo)
            result = _compare(source, target, ignore=self.ignore, limit=self.limit)
            self._remember(scan, tscan, result)
            return result
        self.stats.recopied = len(redo)
        by_leader = {members[0]: members[1:] for members in groups}
        fresh: dict[bytes, str] = {}
        self._phase("copy", scan, redo)
        for index in redo:
            rel = scan.raws[index]
            self._file_job(rel, scan.stats[index], force=True)
            self._advance(1)
            lead = self._dst(rel)
            for follower in by_leader.get(index, []):
                self._place(scan.raws[follower], partial(os.link, lead, follow_symlinks=False))
        self._clean_partials()
        self._dir_metadata(scan, count=False)
        if self.sync:
            self._phase("sync")
            os.sync()
        self._phase("verify", scan, redo)
        for index in redo:
            digest = _hash_file(self._dst(scan.raws[index]), meter=self.meter)
            self._advance(1)
            for member in [index, *by_leader.get(index, [])]:
                fresh[scan.raws[member]] = digest
        for entry in target["entries"]:
            raw = _raw_of(entry)
            if raw in fresh:
                entry["sha256"] = fresh[raw]
        for index, raw in enumerate(tscan.raws):  # the recopied files are new inodes now
            if raw in fresh:
                tscan.stats[index] = os.lstat(self._dst(raw))
                tscan.records[index]["sha256"] = fresh[raw]
        result = _compare(source, target, ignore=self.ignore, limit=self.limit)
        self._remember(scan, tscan, result)
        return result

    def _remember(self, scan: _Scan, tscan: _Scan, comparison: dict[str, Any]) -> None:
        """Once the copy is verified equal, note what stat_cache will hold: stat key and hash of each file."""
        if not self.stat_cache or self.check or not comparison["equal"]:
            return
        self.stat_cache_text = _stat_cache_text(
            {scan.raws[i]: (_stat_key(scan.stats[i]), scan.records[i]["sha256"]) for i in scan.files},
            {tscan.raws[i]: (_stat_key(tscan.stats[i]), tscan.records[i]["sha256"]) for i in tscan.files},
        )
