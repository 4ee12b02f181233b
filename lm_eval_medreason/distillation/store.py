"""The distillation outputs: append-only JSONL files that a killed run resumes from.

``<output>`` holds one line per kept trace, ``<output>.dropped.jsonl`` one line per dropped
item with its ``reason``. Every line carries the item's ``id`` and its case's ``source_id``.
Each line is written with one ``os.write`` on an ``O_APPEND`` descriptor as soon as its item
is done, so a killed process (SIGKILL included) loses nothing written: the line is in the
kernel, and at worst the last line is torn (no newline) if the process died inside the write.
The files are also ``fsync``ed at most every ``fsync_interval`` seconds (default 1) and on
close, so a power cut loses at most about the last second (``fsync_interval=0``: every line).

``read_lines`` only reads: a last line without a newline counts if it parses (a file edited by
hand often ends so), and is ignored if it does not (a torn write). ``TraceStore``, which the
caller opens only while holding the output's lock (``pipeline.run``), repairs before appending:
it cuts a torn last line off, ends a complete one with its newline, and removes from the
dropped file the drops that are not final (API errors that a later run may get past) and those
the caller retries, so that each case still ends up at most once among the two files.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from lm_eval_medreason.errors import DataError


def dropped_path(output: Path) -> Path:
    return output.with_name(output.name + ".dropped.jsonl")


def read_lines(path: Path) -> list[dict]:
    """The records of a JSONL output file, without changing it (see the module docstring)."""
    return _read(Path(path))[0]


def _read(path: Path) -> tuple[list[dict], bytes]:
    """The records, and the file's unfinished tail: b"" (ends with a newline), b"\\n" (a complete last
    line lacks its newline) or the torn bytes to cut off."""
    if not path.exists():
        return [], b""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    last = lines.pop()  # b"" when the file ends with a newline
    tail = b""
    if last.strip():
        try:
            json.loads(last)
            lines.append(last)
            tail = b"\n"
        except ValueError:  # a write that never finished: a prefix of a JSON object never parses
            tail = last
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise DataError(f"{path} line {number}: not valid JSON; not a file `medreason distill` wrote") from None
        if not isinstance(record, dict) or "id" not in record:
            raise DataError(f"{path} line {number}: expected an object with an 'id'; not a distill output file")
        records.append(record)
    return records, tail


class TraceStore:
    """The kept and dropped files of one run, repaired and opened for appending (hold the output's lock)."""

    def __init__(self, output: Path, fsync: bool = True, fsync_interval: float = 1.0, forget=()):
        """``forget``: source ids whose drops are removed, to be asked again (``--retry-dropped``)."""
        self.output = Path(output)
        self.fsync_interval = fsync_interval
        self._synced = time.monotonic()
        self.dropped = dropped_path(self.output)
        self.fsync = fsync
        self.output.parent.mkdir(parents=True, exist_ok=True)
        kept = _repaired(self.output)
        dropped = _repaired(self.dropped)
        forget = set(forget)
        final = [r for r in dropped if r.get("final", True) and r.get("source_id") not in forget]
        if len(final) != len(dropped):
            _rewrite(self.dropped, final)  # retry the items whose failure was not final
        self.kept_records = kept
        self.dropped_records = final
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


def _repaired(path: Path) -> list[dict]:
    """The records of ``path``, after cutting a torn last line off or ending a complete one with its newline."""
    records, tail = _read(path)
    if tail == b"\n":
        with path.open("ab") as handle:
            handle.write(b"\n")
    elif tail:
        with path.open("r+b") as handle:
            handle.truncate(path.stat().st_size - len(tail))
    return records


def _rewrite(path: Path, records: list[dict]) -> None:
    """Replace ``path`` atomically by ``records`` (temporary file, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
