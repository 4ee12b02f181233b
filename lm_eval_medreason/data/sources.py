"""Where each benchmark file comes from: a configured local path, a data folder, or a download.

Every file the loaders read is a ``DataFile`` of the registry (``registry.FILES``, by key: ``medqa``,
``jama_subset``, ...). ``resolve`` looks for it, first match wins:

1. lm-eval ``--metadata`` key ``{key}_path`` (e.g. ``{"medqa_path": "/data/test.jsonl"}``);
2. ``--metadata`` key ``data_dir``: a folder laid out like the upstream repositories
   (``DataFile.relpath``: ``medqa/medqa_us_test_4options.jsonl``, ``jama/jama_raw.csv``, ...);
3. environment variable ``MEDREASON_{KEY}_PATH`` (e.g. ``MEDREASON_JAMA_PATH``);
4. environment variable ``MEDREASON_DATA_DIR`` (same layout as ``data_dir``);
5. the file's public default (a URL or a Hugging Face hub dataset), if it has one.

Defaults are pinned: URLs name a fixed commit of their repository and the hub dataset a fixed
revision, so that two runs months apart score the same questions. Each file the study uses also
has the sha256 of its upstream copy (``DataFile.sha256``); a local or downloaded file that differs
is reported by the loaders (a warning and the run's provenance), not refused.

A configured path that does not exist is an error naming the path and the setting.
A data folder that lacks the file passes on to the next step; if that ends at a
public default, an info line says so; if the file has none, the error names the
paths looked at and says how to obtain the file. Other metadata keys (lm-eval
merges ``model_args`` such as ``pretrained`` into it) are ignored.

Downloads go through ``datasets`` (cached under the Hugging Face cache), imported
only when needed so that ``import lm_eval_medreason.data.loaders`` stays cheap.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lm_eval_medreason.data.registry import DATA_DIR_ENV, DATA_DIR_KEY, FILES, DataFile
from lm_eval_medreason.errors import DataError, one_line

__all__ = ["DATA_DIR_ENV", "DATA_DIR_KEY", "FILES", "DataFile", "Source", "fetch", "hub_rows", "provenance", "resolve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A resolved file: a local ``path``, a ``url`` to download, or a ``hub`` dataset; ``setting`` says why."""

    file: DataFile
    kind: str  # "path" | "url" | "hub"
    location: str
    setting: str


def resolve(key: str, metadata: Mapping | None = None, environ: Mapping | None = None) -> Source | None:
    """Find where file ``key`` comes from (see the module docstring); None only for an optional file found nowhere."""
    file = FILES[key]
    metadata = metadata if isinstance(metadata, Mapping) else {}
    environ = os.environ if environ is None else environ
    missed: list[str] = []
    for setting, value, is_dir in _settings(file, metadata, environ):
        path = _configured_path(value, setting, is_dir)
        if not is_dir:
            return Source(file, "path", str(path), setting)
        candidate = path / file.relpath
        if candidate.is_file():
            return Source(file, "path", str(candidate), setting)
        missed.append(f"{candidate} (from {setting})")
    return _default_source(file, missed)


def _settings(file: DataFile, metadata: Mapping, environ: Mapping):
    """Yield (setting name, configured value, is a folder) in precedence order, skipping unset ones."""
    steps = (
        (f"--metadata {file.metadata_key}", metadata.get(file.metadata_key), False),
        (f"--metadata {DATA_DIR_KEY}", metadata.get(DATA_DIR_KEY), True),
        (file.env_var, environ.get(file.env_var), False),
        (DATA_DIR_ENV, environ.get(DATA_DIR_ENV), True),
    )
    for setting, value, is_dir in steps:
        if value is not None and str(value).strip():
            yield setting, value, is_dir


def _configured_path(value, setting: str, is_dir: bool) -> Path:
    """Turn a configured value into a path that exists and has the right kind, else raise naming the setting."""
    path = Path(str(value).strip()).expanduser()
    if not path.exists():
        raise DataError(f"{path} (from {setting}) does not exist")
    if is_dir and not path.is_dir():
        raise DataError(f"{path} (from {setting}) is not a folder; {setting} names a data folder")
    if not is_dir and path.is_dir():
        raise DataError(f"{path} (from {setting}) is a folder; {setting} names a file")
    return path


def _default_source(file: DataFile, missed: list[str]) -> Source | None:
    """Fall back to the file's public default, or say how to obtain it when it has none."""
    looked = f" (looked for {', '.join(missed)})" if missed else ""
    if file.url or file.hub:
        kind, location = ("url", file.url) if file.url else ("hub", file.hub[0])
        if missed:
            log.info("%s not found in the data folder%s; using the default %s", file.what, looked, location)
        return Source(file, kind, location, "default")
    if file.optional:
        log.debug("no %s configured%s; skipping it", file.what, looked)
        return None
    raise DataError(f"no {file.what} found{looked}: {file.how_to_get}; then point to it with {file.settings_hint()}")


def fetch(source: Source) -> Path:
    """Return a local path for a ``path`` or ``url`` source, downloading (cached) if needed."""
    if source.kind == "path":
        return Path(source.location)
    if source.kind != "url":
        raise ValueError(f"fetch() takes a path or url source, not {source.kind!r}; use hub_rows()")
    try:
        import datasets

        return Path(datasets.DownloadManager().download(source.location))
    except Exception as err:  # noqa: BLE001 - any failure becomes one actionable line
        raise DataError(
            f"could not download {source.location} ({one_line(err)}); to work offline, download it "
            f"yourself and point to it with {source.file.settings_hint()}"
        ) from err


def hub_rows(source: Source) -> list[dict]:
    """Load a ``hub`` source's split at its pinned revision as a list of row dicts (``datasets``, cached)."""
    name, split = source.file.hub
    try:
        import datasets

        return list(datasets.load_dataset(name, split=split, revision=source.file.revision))
    except Exception as err:  # noqa: BLE001 - any failure becomes one actionable line
        raise DataError(
            f"could not load hub dataset {name} (split {split}) ({one_line(err)}); to work offline, "
            f"use a local JSONL copy and point to it with {source.file.settings_hint()}"
        ) from err


def provenance(source: Source, data: bytes | None = None) -> dict:
    """What a run records about a resolved file: where it came from (path, URL + commit, or hub dataset +
    revision) and, given its bytes, their sha256 beside the pinned upstream file's. A file that differs
    from the pinned one is reported in one warning line and recorded, never refused."""
    file = source.file
    record = {"file": file.key, "kind": source.kind, "location": source.location, "setting": source.setting}
    if source.kind == "path":
        record["location"] = str(Path(source.location).resolve())
    elif source.kind == "url":
        record["commit"] = file.revision
    else:
        record.update(dataset=file.hub[0], split=file.hub[1], revision=file.revision)
    if data is not None:
        record["sha256"] = digest = hashlib.sha256(data).hexdigest()
        if file.sha256:
            record.update(pinned_sha256=file.sha256, matches_pinned=digest == file.sha256)
            if digest != file.sha256 and (record["location"], digest) not in _WARNED:
                _WARNED.add((record["location"], digest))  # once per file and process, not once per task
                log.warning(
                    "%s (from %s) differs from the pinned upstream %s (sha256 %s, pinned %s); the run goes on "
                    "and records this in its provenance: its scores may not compare with runs on the upstream file",
                    record["location"], source.setting, Path(file.relpath).name, digest, file.sha256,
                )
    return record


_WARNED: set[tuple[str, str]] = set()
