"""The pidfile: written atomically, a stale one taken over, a live one refused.

Liveness is an ``flock`` held on the pidfile for as long as the daemon runs, not the pid
written in it: the kernel drops the lock when the process dies, however it dies, and a
pid can be reused by an unrelated process. The file is written under a temporary name,
locked, then renamed into place, so a reader never sees it half written and it is never
in place unlocked. A starter that finds it unlocked (its owner is dead) takes it over
while holding the old file's lock, after checking that the file it locked is still the
one at the path, so two starters cannot both win.
"""

from __future__ import annotations

import contextlib
import os

try:
    import fcntl
except ImportError:  # Windows: the daemon does not run there
    fcntl = None  # type: ignore[assignment]


class PidfileError(Exception):
    """Another daemon holds the pidfile, or it cannot be written; the message says which."""


class Pidfile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Write our pid, or raise :class:`PidfileError` when a live daemon holds it."""
        if fcntl is None:
            raise PidfileError("a pidfile needs file locking (fcntl), which is missing here")
        mine = self._locked_temporary()
        try:
            while True:
                try:
                    os.link(mine[1], self.path)  # fails when a pidfile is in place
                    break
                except FileExistsError:
                    if self._take_over_stale(mine[1]):
                        break
        except BaseException:
            os.close(mine[0])
            with contextlib.suppress(OSError):
                os.unlink(mine[1])
            raise
        with contextlib.suppress(OSError):
            os.unlink(mine[1])
        self._fd = mine[0]

    def _locked_temporary(self) -> tuple[int, str]:
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise PidfileError(f"cannot write the pidfile {self.path}: {exc.strerror}") from None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        return fd, temporary

    def _take_over_stale(self, temporary: str) -> bool:
        """Replace the pidfile in place if its owner is dead; raise if it is alive; False
        when the file changed meanwhile (try again)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False  # removed meanwhile: link again
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise PidfileError(
                    f"another daemon (pid {_read_pid(fd)}) is running with the pidfile "
                    f"{self.path}; stop it first, or give another --pidfile"
                ) from None
            try:
                if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                    return False  # replaced by another starter meanwhile
            except FileNotFoundError:
                return False
            os.replace(temporary, self.path)  # still holding the stale file's lock
            return True
        finally:
            os.close(fd)

    def release(self) -> None:
        """Remove the pidfile if it is still ours, and let go of it."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(self._fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def _read_pid(fd: int) -> str:
    try:
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
