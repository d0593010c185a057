"""Following an NDJSON file, with a cursor on disk: a line is read and sent once.

The official daemon keeps its place in memory, so a restart or a SIGHUP reads the file
from the start again and sends every line again under new ids. Here, after each chunk of
lines is written to the spool, the byte offset reached is written to a cursor file
(fsync'ed, renamed into place); a restart or a reload goes on from there. Each line's
event id (when the line gives neither ``event_id`` nor ``idempotency_key``) is derived
from the file's identity and the line's offset in it, so even the chunk read again after a
kill between its spooling and its cursor names the same events, which count once.

The file's identity is its device and inode, a digest of its first line, and a generation
that grows each time the file is found shorter than the cursor (truncated in place).
A file replaced at the path (``logrotate``'s create mode) is read to its end first, then
the new one from its start. Only complete lines are read; a last line still being written
waits for its newline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from typing import IO, NamedTuple

from .._core.constants import LOGGER_NAME
from .._core.events import Attribution
from .._durability.spool import write_atomically
from ._intake import Intake, Refused
from ._lines import line_document

logger = logging.getLogger(LOGGER_NAME)

CURSOR_DIR = ".follow"  # in the spool directory (a hidden name the spool passes over)
POLL_S = 0.2
_CHUNK_BYTES = 1024 * 1024  # a longer line is refused (a batch may hold 450 KiB)
_FINGERPRINT_BYTES = 4096


class Cursor(NamedTuple):
    device: int
    inode: int
    fingerprint: str  # a digest of the first line
    generation: int
    offset: int

    @property
    def identity(self) -> str:
        return f"{self.device}:{self.inode}:{self.fingerprint}:{self.generation}"


class Follower:
    def __init__(
        self,
        path: str,
        spool_dir: str,
        intake: Intake,
        attribution: Callable[[], Attribution | None],
    ) -> None:
        self.path = path
        self._cursor_path = os.path.join(
            spool_dir,
            CURSOR_DIR,
            hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:24] + ".json",
        )
        self._intake = intake
        self._attribution = attribution
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"doow-daemon-follow:{path}", daemon=True
        )
        self.lines = self.refused_lines = 0

    def start(self) -> None:
        os.makedirs(os.path.dirname(self._cursor_path), mode=0o700, exist_ok=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop after the chunk in progress (its cursor written)."""
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if not self._follow_one_file():
                    self._stopping.wait(POLL_S)
        except Exception:
            logger.exception("doow-serverless daemon: following %s failed", self.path)

    def _follow_one_file(self) -> bool:
        """Read the file at the path until it is replaced (then True), or the stop."""
        try:
            file = open(self.path, "rb")  # noqa: SIM115 - held across the loop below
        except FileNotFoundError:
            return False
        except OSError as exc:
            logger.warning("doow-serverless daemon: cannot read %s: %s", self.path, exc)
            return False
        with file:
            cursor = self._start(file)
            if cursor is None:
                return False
            while not self._stopping.is_set():
                cursor = self._truncated(file, cursor)
                data = os.pread(file.fileno(), _CHUNK_BYTES, cursor.offset)
                end = data.rfind(b"\n") + 1
                if end:
                    cursor = self._send(data[:end], cursor)
                    continue
                if len(data) == _CHUNK_BYTES:
                    cursor = self._skip_long_line(file, cursor)
                    continue
                if self._replaced(file):
                    return True  # read to its end: on to the new file
                self._stopping.wait(POLL_S)
        return True

    def _start(self, file: IO[bytes]) -> Cursor | None:
        """Where to begin in this file: the saved cursor when it is the same file; None
        while its first line is not complete."""
        fd = file.fileno()
        first = os.pread(fd, _FINGERPRINT_BYTES, 0)
        newline = first.find(b"\n")
        if newline < 0 and len(first) < _FINGERPRINT_BYTES:
            return None
        fingerprint = hashlib.sha256(first[: newline + 1 or None]).hexdigest()[:16]
        status = os.fstat(fd)
        saved = self._load()
        if saved is not None and (saved.device, saved.inode, saved.fingerprint) == (
            status.st_dev,
            status.st_ino,
            fingerprint,
        ):
            return saved
        cursor = Cursor(status.st_dev, status.st_ino, fingerprint, 0, 0)
        self._save(cursor)
        return cursor

    def _truncated(self, file: IO[bytes], cursor: Cursor) -> Cursor:
        size = os.fstat(file.fileno()).st_size
        if size >= cursor.offset:
            return cursor
        logger.warning(
            "doow-serverless daemon: %s is shorter than where it was read to; reading it "
            "again from its start, as new lines",
            self.path,
        )
        cursor = cursor._replace(generation=cursor.generation + 1, offset=0)
        self._save(cursor)
        return cursor

    def _skip_long_line(self, file: IO[bytes], cursor: Cursor) -> Cursor:
        """Past a line longer than a chunk, once its newline is written (else wait)."""
        position = cursor.offset + _CHUNK_BYTES
        while True:
            data = os.pread(file.fileno(), _CHUNK_BYTES, position)
            newline = data.find(b"\n")
            if newline >= 0:
                break
            if len(data) < _CHUNK_BYTES:
                self._stopping.wait(POLL_S)
                return cursor
            position += len(data)
        logger.warning(
            "doow-serverless daemon: %s, line at byte %d: longer than %d bytes; skipped",
            self.path,
            cursor.offset,
            _CHUNK_BYTES,
        )
        self.refused_lines += 1
        moved = cursor._replace(offset=position + newline + 1)
        self._save(moved)
        return moved

    def _replaced(self, file: IO[bytes]) -> bool:
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return False  # moved away and not recreated yet: keep reading the old one
        mine = os.fstat(file.fileno())
        return (status.st_dev, status.st_ino) != (mine.st_dev, mine.st_ino)

    def _send(self, data: bytes, cursor: Cursor) -> Cursor:
        """Take the complete lines of ``data`` (read at the cursor), then move the cursor."""
        attribution = self._attribution()
        documents = []
        offset = cursor.offset
        for line in data.splitlines(keepends=True):
            if line.strip():
                seed = f"follow:{cursor.identity}:{offset}"
                document = line_document(line, attribution, seed)
                if isinstance(document, str):
                    self.refused_lines += 1
                    logger.warning(
                        "doow-serverless daemon: %s, line at byte %d: %s; skipped",
                        self.path,
                        offset,
                        document,
                    )
                else:
                    documents.append(document)
            offset += len(line)
        while documents:
            taken = self._intake.take(documents)
            if not isinstance(taken, Refused):
                for event_id, reason in taken.rejections:
                    logger.warning(
                        "doow-serverless daemon: %s: event %s refused: %s",
                        self.path,
                        event_id,
                        reason,
                    )
                break
            if self._stopping.wait(taken.retry_after):
                return cursor  # stopped while the spool was full: these are read again
        self.lines += len(documents)
        moved = cursor._replace(offset=cursor.offset + len(data))
        self._save(moved)
        return moved

    def _load(self) -> Cursor | None:
        try:
            with open(self._cursor_path, encoding="utf-8") as file:
                return Cursor(**json.load(file))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            logger.warning(
                "doow-serverless daemon: the cursor of %s cannot be read (%s); reading the "
                "file from its start (its lines keep their ids, so nothing counts twice)",
                self.path,
                exc,
            )
            return None

    def _save(self, cursor: Cursor) -> None:
        body = json.dumps(cursor._asdict()).encode()
        write_atomically(self._cursor_path, body, durable=True)
