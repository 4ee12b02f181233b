"""The distillation outputs: append-only JSONL files that a killed run resumes from.

``<output>`` holds one line per kept trace, ``<output>.dropped.jsonl`` one line per dropped
item with its ``reason``. Every line carries the item's stable ``id``. Each line is written
with one ``os.write`` on an ``O_APPEND`` descriptor as soon as its item is done, so a killed
process (SIGKILL included) loses nothing written: the line is in the kernel, and at worst the
last line is torn (no newline) if the process died inside the write. The files are also
``fsync``ed at most every ``fsync_interval`` seconds (default 1) and on close, so a power cut
loses at most about the last second (``fsync_interval=0``: every line, ~1 ms each).
``open`` reads both files, cuts a torn last line off, and returns what is done: every kept
id, and every dropped id whose reason is final. Drops that are not final (API errors that a
later run may get past) are removed from the file, so that the item is tried again and
still ends up exactly once among the two files.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from lm_eval_medreason.sources import DataError


def dropped_path(output: Path) -> Path:
    return output.with_name(output.name + ".dropped.jsonl")


def read_lines(path: Path) -> list[dict]:
    """The records of a JSONL output file; a torn last line is truncated away, any other bad line is an error."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if end < len(raw):  # a torn last line (no newline): the write it came from never finished
        with path.open("r+b") as handle:
            handle.truncate(end)
    records = []
    for number, line in enumerate(raw[:end].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise DataError(f"{path} line {number}: not valid JSON; this is not a file `medreason distill` wrote") from None
        if not isinstance(record, dict) or "id" not in record:
            raise DataError(f"{path} line {number}: expected an object with an 'id'; not a distill output file")
        records.append(record)
    return records


class TraceStore:
    """The kept and dropped files of one run, opened for appending after reading what is done."""

    def __init__(self, output: Path, fsync: bool = True, fsync_interval: float = 1.0):
        self.output = Path(output)
        self.fsync_interval = fsync_interval
        self._synced = time.monotonic()
        self.dropped = dropped_path(self.output)
        self.fsync = fsync
        self.output.parent.mkdir(parents=True, exist_ok=True)
        kept = read_lines(self.output)
        dropped = read_lines(self.dropped)
        final = [r for r in dropped if r.get("final", True)]
        if len(final) != len(dropped):
            _rewrite(self.dropped, final)  # retry the items whose failure was not final
        self.kept_records = kept
        self.dropped_records = final
        self.done = {r["id"] for r in kept} | {r["id"] for r in final}
        self.trace_hashes = {r.get("meta", {}).get("trace_hash") for r in kept} - {None}
        self._fds = {
            "kept": os.open(self.output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
            "dropped": os.open(self.dropped, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        }

    def write(self, which: str, record: dict) -> None:
        """Append one record as one line ("kept" or "dropped")."""
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        fd = self._fds[which]
        written = os.write(fd, data)
        while written < len(data):  # a short write (rare, large lines): finish it
            written += os.write(fd, data[written:])
        if self.fsync and time.monotonic() - self._synced >= self.fsync_interval:
            self.sync()

    def sync(self) -> None:
        for fd in self._fds.values():
            os.fsync(fd)
        self._synced = time.monotonic()

    def close(self) -> None:
        if self.fsync and self._fds:
            self.sync()
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


def _rewrite(path: Path, records: list[dict]) -> None:
    """Replace ``path`` atomically by ``records`` (temporary file, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
