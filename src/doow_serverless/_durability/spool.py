"""The spool: batches written to local disk before they are sent, so a kill loses none.

Layout: ``{base}/{owner}/{batch_id}.json``, where each process that spools owns one
directory and holds an exclusive ``flock`` on its ``lock`` file for as long as it lives.
The kernel drops the lock when the process dies, however it dies (SIGKILL at a Lambda
deadline included), so a process that starts later can tell an orphaned directory from a
live one without trusting pids, and adopts the orphan's batches: they are sent first.

Paths are plain strings (``os.path``): pathlib would add milliseconds to every cold start.

A batch file is written under a temporary name and renamed into place, so a reader sees a
whole batch or none. Files are not fsync'ed: data written before a process is killed is in
the kernel and survives it; what would not survive, a crash of the machine, takes a Lambda
or Vercel sandbox's ``/tmp`` with it anyway. A file holds the exact request body, so
whatever sends it later sends the same event ids.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
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

    def __init__(self, base: str | os.PathLike[str], max_bytes: int) -> None:
        self.base = os.fspath(base)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._dir: str | None = None
        self._lock_fd: int | None = None
        self._bytes = 0
        self._files: dict[str, int] = {}  # file name (stem) -> size, for what this process holds
        # How many batches in memory hold events of each file: a file goes with the last.
        self._holders: dict[str, int] = {}
        self.set_aside: list[str] = []  # unreadable files found while adopting

    # -- opening -------------------------------------------------------------------------

    def open(self, *, adopt: bool = True) -> list[SpooledBatch]:
        """Claim a directory of our own and (``adopt``) adopt the batches of dead processes.

        Raises :class:`SpoolUnavailable` when the directory cannot be used. Adoption never
        raises: a directory another process adopts at the same moment is simply skipped.
        """
        with self._lock:
            if self._dir is None:
                self._dir = self._claim_directory()
        return self.adopt() if adopt else []

    def adopt(self) -> list[SpooledBatch]:
        """Adopt the batches of processes that died since (several processes share a
        spool directory on Lambda Managed Instances, or an Azure app's workers: the live
        ones take a dead one's batches while the environment lives, each batch once)."""
        with self._lock:
            adopted: list[SpooledBatch] = []
            if self._dir is None:
                return adopted
            for batch in self._adopt_orphans(self._dir, adopted):
                self._files[batch.name] = len(batch.body)
                self._holders[batch.name] = 1
                self._bytes += len(batch.body)
            return adopted

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
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            _remove_tree(building)
            raise SpoolUnavailable(f"cannot use spool directory {self.base}: {exc}") from None
        self._lock_fd = fd
        return final

    def _adopt_orphans(self, own: str, adopted: list[SpooledBatch]) -> list[SpooledBatch]:
        try:
            names = sorted(os.listdir(self.base))
        except OSError as exc:
            logger.warning("doow-serverless: cannot list spool directory %s: %s", self.base, exc)
            return adopted
        for name in names:
            entry = os.path.join(self.base, name)
            # Hidden directories are being claimed right now (see _claim_directory), or were
            # by a process killed meanwhile: those hold no batch, and their lock says which.
            if name.startswith(_NEW_OWNER_PREFIX):
                _remove_if_abandoned(entry)
            elif entry != own and not name.startswith("."):
                self._adopt_if_orphaned(entry, own, adopted)
        return adopted

    def _adopt_if_orphaned(self, directory: str, own: str, adopted: list[SpooledBatch]) -> None:
        """Move a dead owner's batches into ``own`` and append them to ``adopted``."""
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
                    self._adopt_file(os.path.join(directory, name), own, adopted)
            _remove_tree(directory)
        finally:
            if fd is not None:
                os.close(fd)

    def _adopt_file(self, path: str, own: str, adopted: list[SpooledBatch]) -> None:
        stem = _stem(path)
        moved = os.path.join(own, stem + _SUFFIX)
        if os.path.exists(moved) or stem in self._files:  # a copy: never overwrite ours
            moved = os.path.join(own, f"{stem}-{new_random_id()[:8]}{_SUFFIX}")
        try:
            os.replace(path, moved)
        except OSError:
            return  # taken by another process first
        batch = read_batch_file(moved)
        if batch is not None:
            adopted.append(batch)
            return
        aside = os.path.join(self.base, f"{_stem(moved)}.bad")
        if os.path.exists(aside):  # never overwrite one set aside before
            aside = os.path.join(self.base, f"{_stem(moved)}-{new_random_id()[:8]}.bad")
        with contextlib.suppress(OSError):
            os.replace(moved, aside)
        self.set_aside.append(aside)

    # -- writing -------------------------------------------------------------------------

    def save(self, batch_id: str, body: bytes) -> bool:
        """Write one batch as ``{batch_id}.json``, held by one batch; False when the bound or
        the disk refuses it. Saving a file that exists already changes nothing."""
        with self._lock:
            directory = self._dir
            if directory is None or batch_id in self._files:
                return directory is not None
            if self._bytes + len(body) > self.max_bytes:
                return False
            final = os.path.join(directory, batch_id + _SUFFIX)
            temporary = os.path.join(directory, f".{batch_id}.tmp")
            try:
                with open(temporary, "wb") as file:
                    file.write(body)
                os.replace(temporary, final)
            except OSError as exc:
                logger.debug("doow-serverless: could not spool batch %s: %s", batch_id, exc)
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                return False
            self._files[batch_id] = len(body)
            self._holders[batch_id] = 1
            self._bytes += len(body)
            return True

    def share(self, name: str) -> None:
        """One more batch holds events of this file (a half of a split batch, say)."""
        with self._lock:
            if name in self._files:
                self._holders[name] += 1

    def discard(self, name: str) -> None:
        """A batch holding events of this file is done with them; the last one removes it."""
        with self._lock:
            if name not in self._files or self._dir is None:
                return
            self._holders[name] -= 1
            if self._holders[name] > 0:
                return
            del self._holders[name]
            self._bytes -= self._files.pop(name)
            try:
                os.unlink(os.path.join(self._dir, name + _SUFFIX))
            except FileNotFoundError:
                pass
            except OSError as exc:  # a read-only file system: the next process resends it
                logger.debug("doow-serverless: could not remove spooled batch %s: %s", name, exc)

    def holds(self, name: str) -> bool:
        with self._lock:
            return name in self._files

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def close(self) -> None:
        """Let go of the directory; what is in it is adopted by the next process."""
        with self._lock:
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
        self._lock_fd = None
        self._dir = None
        self._files = {}
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


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]
