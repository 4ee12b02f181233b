"""Exclusive locks on output paths, so that two runs never write the same files at once.

``hold(path)`` takes an exclusive ``flock`` on the file ``path`` (created if absent) and writes
the holder's process id into it; a second holder gets ``errors.Busy`` at once, naming that process.
The kernel drops the lock when the holder dies, even by SIGKILL, so a stale lock file never
blocks anyone. ``close(remove=True)`` also deletes the file; a process that opened the old file
just before the delete notices that the path now names another file (or none) and tries again,
so the delete never lets two holders in.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from lm_eval_medreason.errors import Busy


class Lock:
    """A held lock; release it with ``close`` (or a ``with`` block), or let the process end."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def close(self, remove: bool = False) -> None:
        if self.fd is None:
            return
        if remove:
            try:
                os.unlink(self.path)  # while still holding it: see the module docstring
            except FileNotFoundError:
                pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def hold(path) -> Lock:
    """Lock ``path`` for this process, or raise ``Busy`` without waiting."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise Busy(path, owner) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file after we opened it: lock the new one
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return Lock(path, fd)
