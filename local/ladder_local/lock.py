"""One `ladder run` per run directory at a time, and a way for `ladder status` to tell whether
the runner that wrote a Running status is still alive (a status file cannot say so itself)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ladder_api.errors import UserError
from ladder_local.layout import LOCK_FILE


class RunLock:
    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = self.path.read_text().strip() or "another process"
            raise UserError(
                f"{self.path.parent} is in use by another `ladder run` (pid {owner}); wait for it, "
                f"stop it (Ctrl-C) or choose another directory with -o"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def runner_alive(out_dir: Path) -> bool:
    """True while some `ladder run` holds the directory's lock."""
    path = out_dir / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
