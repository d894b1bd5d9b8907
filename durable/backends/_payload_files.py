"""Large payloads of a SQLite store, in files beside its database.

SQLite writes a blob twice (into the log, then into the database at a
checkpoint), in pages, and keeps the log as large as the last burst: a step
returning 16 MiB cost three times as long as writing the file, and the store
twice the disk (benchmarks/RESULTS.md). A payload of ``EXTERNAL_BYTES`` or
more goes instead into a file of its own, in the folder ``<database>-payloads``,
written before the row that refers to it commits; the row holds a reference
(``reference``) in place of the bytes. Reading the row reads the file, except
for a workflow's records loaded to resume it (``Backend.load_steps``): each
file is mapped into memory as its step replays (``PayloadFiles.view``), so a
resume holds one large result at a time and unpickles it without a copy first.

Each file belongs to one row: a fork or a restore copies a row with its own
file. Files go when their rows do (cleanup, prune), once that commits; a file
without a row (a write that lost its race, a crash between the file and the
commit) is removed by the next cleanup once it is an hour old.

Durability follows the store's mode. ``full`` syncs the file and its folder
before the row commits. ``normal`` syncs them with the log, before each
checkpoint (``_checkpointer``) and when the store closes, which is when
SQLite makes that mode's commits safe from a power loss: a crash of the
process loses nothing (the file is written before its commit), and a power
loss can take back a file written since the last checkpoint, as it can take
back the commits since then; a row that outlived its file reads as a
``PayloadIntegrityError`` naming the file. ``batched`` leaves flushing to
the operating system, as it does for the database.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from durable._errors import BackendUnavailableError, PayloadIntegrityError
from durable._records import Parts
from durable.backends._forks import renew_in_children

log = logging.getLogger("durable.sqlite")
_Payload = TypeVar("_Payload", bytes, "bytes | memoryview", "bytes | _Size")

EXTERNAL_BYTES = 128 * 1024
"""Payloads of this size or more are kept in files (SQLite's own measurements put
the point where a file beats a blob near 100 KiB)."""
MARKER = b"\x00durable-file:"
"""How a reference starts: no pickled or sealed payload starts with a NUL byte."""
GONE_SECONDS = 10.0
"""How long the file of a deleted row waits before it is deleted (see ``PayloadFiles.remove``)."""
_GONE = "gone"
ORPHAN_SECONDS = 3600.0
"""Age past which a file no row refers to is removed (younger: its commit may be on its way)."""
RESWEEP_SECONDS = 86400.0
"""How often a cleanup looks for orphans among files an earlier look already judged."""
_SWEPT = "swept"  # an empty file: its time is that of the last look for orphans


def reference(size: int, name: str) -> bytes:
    """What a row holds for a payload of ``size`` bytes kept in the file ``name``."""
    return MARKER + f"{size}:{name}".encode()


_REFERENCE = re.compile(rb"([0-9]{1,15}):([0-9a-f]{32})")


def parse(stored: bytes) -> tuple[int, str] | None:
    """The size and file name a stored value refers to, or None for a payload kept inline.

    Anything else after the marker is refused: a reference names a file of
    the folder by a name of its own making, never a path.
    """
    if not stored.startswith(MARKER):
        return None
    found = _REFERENCE.fullmatch(stored, len(MARKER))
    if found is None:
        raise PayloadIntegrityError(
            f"a stored payload refers to a file in a form durable never writes "
            f"({bytes(stored[:80])!r}): the row was edited or damaged. It was not read"
        )
    return int(found[1]), found[2].decode()


def file_name(stored: bytes) -> str | None:
    """The name of the file a stored value refers to, if it refers to one of durable's."""
    try:
        found = parse(stored)
    except PayloadIntegrityError:  # not a file of durable's: nothing to keep or remove
        return None
    return found[1] if found is not None else None


def stored_size(head: bytes | None, length: int) -> int:
    """A payload's size, from the first bytes of its stored value and that value's length."""
    try:
        found = parse(bytes(head)) if head is not None else None
    except PayloadIntegrityError:  # shown as stored; reading it says what is wrong
        return length
    return found[0] if found is not None else length


class PayloadFiles:
    """The payload files of one SQLite database (see the module's docstring)."""

    def __init__(self, database: str, durability: str) -> None:
        # Beside the real file (as SQLite's -wal is), whatever path opened it.
        self.folder = f"{os.path.realpath(database)}-payloads"
        self._gone = os.path.join(self.folder, _GONE)
        self._durability = durability
        self.after_fork()
        renew_in_children(self)

    def after_fork(self) -> None:
        """Start afresh (at first, and in a forked child: the parent syncs its own files)."""
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._folders: set[str] = set()  # made since the last sync
        self._timers: list[threading.Timer] = []

    def _path(self, name: str) -> str:
        # Two hex digits of the (random) name spread files over 256 folders.
        return os.path.join(self.folder, name[:2], name)

    def store(self, payload: bytes | Parts) -> bytes:
        """Write ``payload`` to a new file; the reference its row holds instead.

        A payload in :class:`Parts` is written part after part, never joined.
        """
        name = os.urandom(16).hex()  # what secrets.token_hex does, without its imports
        path = self._path(name)
        pieces = payload.pieces if isinstance(payload, Parts) else (payload,)
        try:
            self._write(path, pieces)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)  # a part of it, if any: its row is never written
            raise BackendUnavailableError(
                f"cannot write the payload file {path} ({exc.strerror or exc}): free disk "
                f"space, or let this process write the folder {self.folder}; the step "
                "runs again when the workflow resumes",
                url=self.folder,
            ) from exc
        return reference(len(payload), name)

    def _write(self, path: str, pieces: Sequence[bytes]) -> None:
        try:
            fd = os.open(path, _NEW_FILE, 0o666)  # as open(path, "xb"): the umask decides
        except FileNotFoundError:
            self._make_folder(os.path.dirname(path))
            fd = os.open(path, _NEW_FILE, 0o666)
        try:
            _write_all(fd, pieces)
            if self._durability == "full":
                os.fsync(fd)
        finally:
            os.close(fd)
        if self._durability == "full":
            _sync_folder(os.path.dirname(path))
        elif self._durability == "normal":
            with self._lock:
                self._pending.append(path)

    def _make_folder(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        # A new folder's own entry must be on disk before a file in it counts.
        parents = [self.folder, os.path.dirname(self.folder)]
        if self._durability == "full":
            for parent in parents:
                _sync_folder(parent)
        elif self._durability == "normal":
            with self._lock:
                self._folders.update(parents)

    def load(self, stored: bytes) -> bytes:
        """The payload a stored value stands for (the value itself when kept inline)."""
        return self._get(stored, _read)

    def view(self, stored: bytes) -> bytes | memoryview:
        """:meth:`load`, as a read-only view of the file mapped into memory.

        Unpickled from the view, a large result is copied once, from the page
        cache into the value, instead of twice (into a buffer read first, then
        into the value): 8 files of 16 MiB took 15 ms instead of 98 here. The
        mapping goes with the view. A file is never changed once written, only
        deleted, which leaves a mapping whole.
        """
        return self._get(stored, _map)

    def ensure(self, stored: bytes) -> None:
        """Raise as :meth:`load` would for a missing or cut file, reading only its size."""
        self._get(stored, _size)

    def _get(self, stored: bytes, reader: Callable[[str, str], _Payload]) -> _Payload:
        found = parse(stored)
        if found is None:
            return stored
        size, name = found
        path = self._path(name)
        try:
            payload = reader(path, os.path.join(self._gone, name))
        except FileNotFoundError:
            raise PayloadIntegrityError(
                f"the payload file {path} ({size} bytes) is missing: it was deleted or "
                "moved, or lost in a power loss right after it was written. Restore the "
                f"folder {self.folder} from a copy taken with its database, or rewind the "
                "workflow to before this step (Store.restore)"
            ) from None
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot read the payload file {path} ({exc.strerror or exc}): let this "
                f"process read the folder {self.folder}",
                url=self.folder,
            ) from exc
        if len(payload) != size:
            raise PayloadIntegrityError(
                f"the payload file {path} holds {len(payload)} bytes, not the {size} its "
                "record says: it was cut short (a power loss right after it was written, "
                f"a full disk, a partial copy). Restore the folder {self.folder} from a "
                "copy taken with its database, or rewind the workflow to before this step"
            )
        return payload

    def discard(self, stored: bytes) -> None:
        """Delete at once the file of a record that was never written (no reader saw it)."""
        name = file_name(stored)
        if name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(name))

    def remove(self, stored: Iterable[bytes]) -> None:
        """Delete the files these stored values refer to (once their rows are gone).

        A reader that found a reference before the rows went may open its file
        a moment later: the files wait ``GONE_SECONDS`` in a folder of their
        own, where reads look too, before they are deleted.
        """
        names = [name for value in stored if (name := file_name(value)) is not None]
        if not names:
            return
        os.makedirs(self._gone, exist_ok=True)
        moved = []
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.replace(self._path(name), os.path.join(self._gone, name))
                moved.append(os.path.join(self._gone, name))
        timer = threading.Timer(GONE_SECONDS, _unlink_all, (moved,))
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def has_old_files(self, now: float | None = None) -> bool:
        """Whether a file here may be an orphan that the last look for orphans did not judge.

        Looked at before the rows' references are read for :meth:`sweep`: that
        read goes through every step row of the store. A file that was old
        enough at the last look was judged then (referenced, or removed); one
        referenced then becomes unreferenced only when its row is deleted,
        which removes it too, unless the process dies in between: for those,
        every file is judged again once a day (``RESWEEP_SECONDS``).
        """
        now = time.time() if now is None else now
        try:
            swept = os.stat(os.path.join(self.folder, _SWEPT)).st_mtime
        except FileNotFoundError:
            swept = 0.0
        # Each file again once a day; else only what was too young at the last look.
        since = 0.0 if now - swept >= RESWEEP_SECONDS else swept - ORPHAN_SECONDS
        cutoff = now - ORPHAN_SECONDS
        with contextlib.suppress(FileNotFoundError), os.scandir(self.folder) as subs:
            for sub in subs:
                if not sub.is_dir() or sub.name == _GONE:
                    continue
                with os.scandir(sub.path) as entries:
                    for entry in entries:
                        with contextlib.suppress(FileNotFoundError):
                            if since <= entry.stat().st_mtime < cutoff:
                                return True
        return False

    def sweep(self, referenced: set[str] | None, now: float | None = None) -> int:
        """Remove files no row refers to and older than ``ORPHAN_SECONDS``; how many went.

        Also removes what a removal left waiting (a process that exited first).
        ``referenced`` None: only that, as no file was old enough to be an orphan
        (:meth:`has_old_files`).
        """
        now = time.time() if now is None else now
        removed = 0
        if referenced is not None:
            with contextlib.suppress(FileNotFoundError):
                with open(os.path.join(self.folder, _SWEPT), "wb"):
                    pass
                os.utime(os.path.join(self.folder, _SWEPT), (now, now))
        with contextlib.suppress(FileNotFoundError):
            for sub in os.scandir(self.folder):
                if not sub.is_dir():
                    continue
                gone = sub.name == _GONE
                if referenced is None and not gone:
                    continue
                cutoff = now - (GONE_SECONDS if gone else ORPHAN_SECONDS)
                for entry in os.scandir(sub.path):
                    if not gone and referenced is not None and entry.name in referenced:
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        if entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)
                            removed += 1
        return removed

    def check(self, stored: Iterable[bytes]) -> list[str]:
        """What is wrong with the files these stored values refer to (nothing: [])."""
        wrong = []
        for value in stored:
            try:
                found = parse(value)
            except PayloadIntegrityError as exc:
                wrong.append(str(exc))
                continue
            if found is None:
                continue
            size, name = found
            try:
                actual = os.stat(self._path(name)).st_size
            except FileNotFoundError:
                wrong.append(f"{self._path(name)} is missing")
                continue
            if actual != size:
                wrong.append(f"{self._path(name)} holds {actual} bytes, not {size}")
        return wrong

    def total_bytes(self) -> int:
        """The size of every payload file (those waiting to be deleted not counted)."""
        total = 0
        with contextlib.suppress(FileNotFoundError):
            for sub in os.scandir(self.folder):
                if sub.is_dir() and sub.name != _GONE:
                    total += sum(e.stat().st_size for e in os.scandir(sub.path) if e.is_file())
        return total

    def sync(self) -> None:
        """Sync the files written and not synced yet, and their folders."""
        with self._lock:
            paths, self._pending = self._pending, []
            made, self._folders = self._folders, set()
        folders = set()
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # removed meanwhile
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            folders.add(os.path.dirname(path))
        # Files' folders first, then the folders that hold new folders.
        for folder in sorted(folders) + sorted(made - folders, key=len, reverse=True):
            _sync_folder(folder)

    def close(self) -> None:
        """Sync what is pending (the store closes: SQLite checkpoints its log).

        Files of deleted rows still waiting are deleted now.
        """
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            if timer.is_alive():
                timer.cancel()
                timer.function(*timer.args)
        try:
            self.sync()
        except OSError as exc:  # the files are written: the OS flushes them in time
            log.warning("could not sync payload files in %s: %s", self.folder, exc)


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_IOV_MAX = 1024
"""The most buffers one ``writev`` takes on Linux and macOS (POSIX's IOV_MAX)."""


def _write_all(fd: int, pieces: Sequence[bytes]) -> None:
    """Write the pieces in order, from the buffers themselves (``writev``: no joined copy).

    A write may stop short (Linux writes at most 2 GiB at once, a signal may
    interrupt it): the rest is written from where it stopped.
    """
    views = [memoryview(piece) for piece in pieces if piece]
    writev = getattr(os, "writev", None)  # not on Windows
    first = 0
    while first < len(views):
        batch = views[first : first + _IOV_MAX]
        written = writev(fd, batch) if writev is not None else os.write(fd, batch[0])
        if not written:  # a regular file takes at least a byte, or raises (a full disk)
            raise OSError(errno.EIO, "the payload file took none of a write")
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]


def _read(path: str, gone: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        with open(gone, "rb") as file:  # its row was deleted a moment ago
            return file.read()


def _map(path: str, gone: str) -> bytes | memoryview:
    if os.name == "nt":  # a mapped file could not be moved or deleted there meanwhile
        return _read(path, gone)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        fd = os.open(gone, os.O_RDONLY)  # its row was deleted a moment ago
    try:
        size = os.fstat(fd).st_size
        if size == 0:  # cut short to nothing: mmap refuses an empty file
            return b""
        try:
            return memoryview(mmap.mmap(fd, size, access=mmap.ACCESS_READ))
        except OSError:  # a file system that cannot map files (some network mounts)
            with open(fd, "rb", closefd=False) as file:
                return file.read()
    finally:
        os.close(fd)


class _Size:
    """A file's size, as :meth:`PayloadFiles._get` checks it (``len``)."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def _size(path: str, gone: str) -> _Size:
    try:
        return _Size(os.stat(path).st_size)
    except FileNotFoundError:
        return _Size(os.stat(gone).st_size)  # its row was deleted a moment ago


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _sync_folder(folder: str) -> None:
    if os.name == "nt":  # a folder cannot be opened there; NTFS journals its entries
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
