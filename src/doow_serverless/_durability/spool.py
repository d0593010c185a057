"""The spool: batches written to local disk before they are sent, so a kill loses none.

Layout: ``{base}/{owner}/{batch_id}.json``, where each process that spools owns one
directory and holds an exclusive ``flock`` on its ``lock`` file for as long as it lives.
The kernel drops the lock when the process dies, however it dies (SIGKILL at a Lambda
deadline included), so a process that starts later can tell an orphaned directory from a
live one without trusting pids, and adopts the orphan's batches: they are sent first.

Paths are plain strings (``os.path``): pathlib would add milliseconds to every cold start.

A batch file is written under a temporary name and renamed into place, so a reader sees a
whole batch or none. By default files are not fsync'ed: data written before a process is
killed is in the kernel and survives it; what would not survive, a crash of the machine,
takes a Lambda or Vercel sandbox's ``/tmp`` with it anyway. A ``durable`` spool (the
daemon's, which acknowledges a batch once it is written) fsyncs each file and then its
directory before ``save`` returns, so a batch saved survives a crash of the machine too.
(Removals are not fsync'ed: a file that comes back after a crash is sent again, with the
same ids, and counted once.) A file holds the exact request body, so whatever sends it
later sends the same event ids.

Several threads may save at once: files are written outside the spool's lock, so their
fsyncs overlap instead of queueing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from .._core.constants import LOGGER_NAME
from .._core.wire import new_random_id, read_sent_batch

logger = logging.getLogger(LOGGER_NAME)

_LOCK_NAME = "lock"
_SUFFIX = ".json"
_NEW_OWNER_PREFIX = ".new-"
_ABANDONED_AFTER_S = 60.0

try:
    import fcntl
except ImportError:  # Windows: no flock; the spool reports itself unavailable
    fcntl = None  # type: ignore[assignment]


class SpooledBatch(NamedTuple):
    """A batch read back from disk: its id, its events' ids and documents, its file."""

    batch_id: str
    event_ids: list[str]
    documents: list[dict[str, Any]]
    body: bytes
    path: str

    @property
    def name(self) -> str:
        """What the spool knows the file by (its batch id, unless someone renamed it)."""
        return _stem(self.path)


class SpoolUnavailable(Exception):
    """The spool directory cannot be used; the message says why."""


class Spool:
    """One process's share of a spool directory. Thread-safe."""

    def __init__(
        self, base: str | os.PathLike[str], max_bytes: int, *, durable: bool = False
    ) -> None:
        self.base = os.fspath(base)
        self.max_bytes = max_bytes
        self.durable = durable
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._dir: str | None = None
        self._lock_fd: int | None = None
        self._bytes = 0  # of the files held, and of those being written
        self._files: dict[str, int] = {}  # file name (stem) -> size, for what this process holds
        self._writing: set[str] = set()
        # How many batches in memory hold events of each file: a file goes with the last.
        self._holders: dict[str, int] = {}
        self.set_aside: list[str] = []  # unreadable files found while adopting

    # -- opening -------------------------------------------------------------------------

    def open(self, *, adopt: bool = True) -> list[SpooledBatch]:
        """Claim a directory of our own and (``adopt``) adopt the batches of dead processes.

        Raises :class:`SpoolUnavailable` when the directory cannot be used. Adoption never
        raises: a directory another process adopts at the same moment is simply skipped.
        """
        self._open(None)
        return self.adopt() if adopt else []

    def adopt(self) -> list[SpooledBatch]:
        """Adopt the batches of processes that died since (several processes share a
        spool directory on Lambda Managed Instances, or an Azure app's workers: the live
        ones take a dead one's batches while the environment lives, each batch once)."""
        adopted: list[SpooledBatch] = []

        def take(path: str) -> None:
            batch = read_batch_file(path)
            if batch is None:
                self._set_aside(path)
            else:
                adopted.append(batch)
                self._hold(batch.name, len(batch.body))

        self._adopt_with(take)
        return adopted

    def open_lazily(self) -> list[str]:
        """Like :meth:`open`, but the batches of dead processes are only moved into this
        process's directory, not read: their names, in name order (read each with
        :meth:`read` when there is room for it in memory)."""
        names: list[str] = []

        def take(path: str) -> None:
            try:
                size = os.path.getsize(path)
            except OSError:
                return
            names.append(_stem(path))
            self._hold(_stem(path), size)

        self._open(take)
        return sorted(names)

    def _open(self, take: Callable[[str], None] | None) -> None:
        """Claim our directory; ``take`` each file moved in from a dead process's."""
        with self._lock:
            if self._dir is None:
                self._dir = self._claim_directory()
        if take is not None:
            self._adopt_with(take)

    def _adopt_with(self, take: Callable[[str], None]) -> None:
        """Move the files of dead processes into our directory, ``take`` each (under the
        lock); nothing before the directory is claimed."""
        with self._lock:
            if self._dir is None:
                return
            self._adopt_orphans(self._dir, take)
            if self.durable:
                _fsync_directory(self._dir)

    def _hold(self, name: str, size: int) -> None:
        """A file of ours, held by one batch; the caller holds the lock."""
        self._files[name] = size
        self._holders[name] = 1
        self._bytes += size

    def _claim_directory(self) -> str:
        if fcntl is None:
            raise SpoolUnavailable("file locking (fcntl) is not available on this platform")
        try:
            os.makedirs(self.base, exist_ok=True)
            # Built under a hidden name and renamed when locked, so no other process ever
            # sees our directory without its lock held.
            owner = f"{os.getpid()}-{new_random_id()[:8]}"
            building = os.path.join(self.base, f"{_NEW_OWNER_PREFIX}{owner}")
            os.mkdir(building, mode=0o700)
        except OSError as exc:
            raise SpoolUnavailable(f"cannot use spool directory {self.base}: {exc}") from None
        fd = None
        try:
            fd = os.open(os.path.join(building, _LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            final = os.path.join(self.base, owner)
            os.rename(building, final)
            if self.durable:
                _fsync_directory(self.base)
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            _remove_tree(building)
            raise SpoolUnavailable(f"cannot use spool directory {self.base}: {exc}") from None
        self._lock_fd = fd
        return final

    def _adopt_orphans(self, own: str, take: Callable[[str], None]) -> None:
        try:
            names = sorted(os.listdir(self.base))
        except OSError as exc:
            logger.warning("doow-serverless: cannot list spool directory %s: %s", self.base, exc)
            return
        for name in names:
            entry = os.path.join(self.base, name)
            # Hidden directories are being claimed right now (see _claim_directory), or were
            # by a process killed meanwhile: those hold no batch, and their lock says which.
            if name.startswith(_NEW_OWNER_PREFIX):
                _remove_if_abandoned(entry)
            elif entry != own and not name.startswith("."):
                self._adopt_if_orphaned(entry, own, take)

    def _adopt_if_orphaned(self, directory: str, own: str, take: Callable[[str], None]) -> None:
        """Move a dead owner's batches into ``own``, and ``take`` each."""
        assert fcntl is not None
        try:
            fd: int | None = os.open(os.path.join(directory, _LOCK_NAME), os.O_RDWR)
        except FileNotFoundError:
            fd = None  # an owner that died before locking (nothing spooled), or just adopted
        except OSError:
            return  # not a directory, or not ours to read
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return  # its owner is alive
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                return  # adopted and removed by another process meanwhile
            for name in names:
                if name.endswith(_SUFFIX) and not name.startswith("."):
                    self._adopt_file(os.path.join(directory, name), own, take)
            _remove_tree(directory)
        finally:
            if fd is not None:
                os.close(fd)

    def _adopt_file(self, path: str, own: str, take: Callable[[str], None]) -> None:
        stem = _stem(path)
        moved = os.path.join(own, stem + _SUFFIX)
        if os.path.exists(moved) or stem in self._files:  # a copy: never overwrite ours
            moved = os.path.join(own, f"{stem}-{new_random_id()[:8]}{_SUFFIX}")
        try:
            os.replace(path, moved)
        except OSError:
            return  # taken by another process first
        take(moved)

    def _set_aside(self, path: str) -> None:
        """Move a file that is not a batch out of the way, next to the owners' directories."""
        aside = os.path.join(self.base, f"{_stem(path)}.bad")
        if os.path.exists(aside):  # never overwrite one set aside before
            aside = os.path.join(self.base, f"{_stem(path)}-{new_random_id()[:8]}.bad")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        self.set_aside.append(aside)

    def read(self, name: str) -> SpooledBatch | None:
        """One of our files, read back; None when we hold no such file, or when it is not
        a batch (then it is set aside, and no longer ours)."""
        with self._lock:
            directory = self._dir
            if directory is None or name not in self._files:
                return None
        path = os.path.join(directory, name + _SUFFIX)
        batch = read_batch_file(path)
        if batch is None:
            self._set_aside(path)
            self._forget(name)
        return batch

    # -- writing -------------------------------------------------------------------------

    def save(self, batch_id: str, body: bytes) -> bool:
        """Write one batch as ``{batch_id}.json``, held by one batch; False when the bound or
        the disk refuses it. Saving a file that exists already changes nothing."""
        size = len(body)
        with self._lock:
            directory = self._dir
            if directory is None or batch_id in self._files or batch_id in self._writing:
                return directory is not None
            if self._bytes + size > self.max_bytes:
                return False
            self._bytes += size  # reserved while it is written
            self._writing.add(batch_id)
        written = self._write(directory, batch_id, body)
        with self._lock:
            self._writing.discard(batch_id)
            self._written.notify_all()
            if not written:
                self._bytes -= size
                return False
            self._files[batch_id] = size
            self._holders[batch_id] = 1
            return True

    def _write(self, directory: str, batch_id: str, body: bytes) -> bool:
        final = os.path.join(directory, batch_id + _SUFFIX)
        try:
            write_atomically(final, body, durable=self.durable)
        except OSError as exc:
            logger.debug("doow-serverless: could not spool batch %s: %s", batch_id, exc)
            return False
        return True

    def room(self, size: int) -> bool:
        """Whether a file of ``size`` bytes fits under the bound now."""
        with self._lock:
            return self._bytes + size <= self.max_bytes

    def share(self, name: str) -> None:
        """One more batch holds events of this file (a half of a split batch, say)."""
        with self._lock:
            if name in self._files:
                self._holders[name] += 1

    def discard(self, name: str) -> None:
        """A batch holding events of this file is done with them; the last one removes it."""
        with self._lock:
            directory = self._dir
            if name not in self._files or directory is None:
                return
            self._holders[name] -= 1
            if self._holders[name] > 0:
                return
            self._bytes -= self._files.pop(name)
            del self._holders[name]
            try:
                os.unlink(os.path.join(directory, name + _SUFFIX))
            except FileNotFoundError:
                pass
            except OSError as exc:  # a read-only file system: the next process resends it
                logger.debug("doow-serverless: could not remove spooled batch %s: %s", name, exc)

    def _forget(self, name: str) -> None:
        with self._lock:
            if name in self._files:
                self._bytes -= self._files.pop(name)
                self._holders.pop(name, None)

    def holds(self, name: str) -> bool:
        with self._lock:
            return name in self._files

    @property
    def bytes_used(self) -> int:
        return self._bytes

    @property
    def files(self) -> int:
        """How many files this process holds."""
        return len(self._files)

    def close(self) -> None:
        """Let go of the directory; what is in it is adopted by the next process."""
        with self._lock:
            self._written.wait_for(lambda: not self._writing)
            if self._dir is not None and not self._files:
                _remove_tree(self._dir)  # nothing left: no empty directory either
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # the kernel drops the flock
                self._lock_fd = None
            self._dir = None
            self._files.clear()
            self._holders.clear()
            self._bytes = 0

    def forget_after_fork(self) -> None:
        """In a forked child: the directory and its lock are the parent's."""
        if self._lock_fd is not None:
            # Closing our copy leaves the parent's lock in place (flock locks belong to
            # the open file, which the parent still holds); LOCK_UN would release it.
            os.close(self._lock_fd)
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._lock_fd = None
        self._dir = None
        self._files = {}
        self._writing = set()
        self._holders = {}
        self._bytes = 0


def owner_is_alive(directory: str | os.PathLike[str]) -> bool:
    """Whether the process owning this spool directory still runs (holds its lock)."""
    if fcntl is None:
        return False  # type: ignore[unreachable]  # no flock (Windows): no spool either
    try:
        fd = os.open(os.path.join(directory, _LOCK_NAME), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def read_batch_file(path: str) -> SpooledBatch | None:
    """A spooled batch, or None (reported) when the file is not a batch body."""
    try:
        with open(path, "rb") as file:
            body = file.read()
    except OSError as exc:
        logger.warning("doow-serverless: cannot read spooled batch %s: %s", path, exc)
        return None
    batch = parse_batch_body(body, path)
    if batch is None:
        logger.warning("doow-serverless: spooled file %s is not a batch body; set aside", path)
    return batch


def parse_batch_body(body: bytes, path: str | os.PathLike[str]) -> SpooledBatch | None:
    sent = read_sent_batch(body)
    if sent is None:
        return None
    return SpooledBatch(sent.batch_id, sent.event_ids, sent.documents, body, os.fspath(path))


def _remove_tree(directory: str) -> None:
    """Remove an adopted directory: its lock, leftover temporary files, then itself."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if name == _LOCK_NAME or name.startswith("."):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def _remove_if_abandoned(directory: str) -> None:
    """Remove a directory a process was claiming when it died (it never holds a batch).

    Only an old one: a process claiming its directory right now has not locked it yet.
    """
    with contextlib.suppress(OSError):
        if (
            time.time() - os.stat(directory).st_mtime > _ABANDONED_AFTER_S
            and not owner_is_alive(directory)
            and not any(name.endswith(_SUFFIX) for name in os.listdir(directory))
        ):
            _remove_tree(directory)


def write_atomically(path: str, body: bytes, *, durable: bool) -> None:
    """Write ``path`` whole or not at all (a hidden temporary file renamed into place);
    ``durable``: fsync'ed, and so is the directory, before this returns. Raises OSError."""
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(body)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the entries of a directory (a file renamed into it) survive a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]
