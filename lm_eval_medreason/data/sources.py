"""Where each benchmark file comes from: a configured local path, a data folder, or a download.

Every file the loaders read has a key (``medqa``, ``medqa_op5``, ``medbullets``,
``medbullets_op4``, ``jama``, ``jama_subset``, ``jama_key``, and the distillation input
``medqa_train``). ``resolve`` looks for it,
first match wins:

1. lm-eval ``--metadata`` key ``{key}_path`` (e.g. ``{"medqa_path": "/data/test.jsonl"}``);
2. ``--metadata`` key ``data_dir``: a folder laid out like the upstream repositories
   (``medqa/medqa_us_test_4options.jsonl``, ``jama/jama_raw.csv``, ...);
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

from lm_eval_medreason.errors import DataError, one_line

log = logging.getLogger(__name__)

DATA_DIR_KEY = "data_dir"
DATA_DIR_ENV = "MEDREASON_DATA_DIR"


@dataclass(frozen=True)
class DataFile:
    """One file a benchmark needs: where it sits in a data folder and its public default, if any."""

    key: str
    relpath: str
    what: str
    url: str | None = None
    hub: tuple[str, str] | None = None  # (dataset name, split)
    how_to_get: str = ""
    optional: bool = False
    revision: str | None = None  # the commit the url names, or the hub dataset's revision
    sha256: str | None = None  # of the upstream file (what a local copy is checked against)

    @property
    def metadata_key(self) -> str:
        """The lm-eval ``--metadata`` key that points at this file."""
        return f"{self.key}_path"

    @property
    def env_var(self) -> str:
        """The environment variable that points at this file."""
        return f"MEDREASON_{self.key.upper()}_PATH"

    def settings_hint(self) -> str:
        """How to point the package at a local copy, in one clause."""
        name = Path(self.relpath).name
        return (
            f"""--metadata '{{"{self.metadata_key}": "/path/to/{name}"}}' or {self.env_var}=/path/to/{name}, """
            f"or put it at <data_dir>/{self.relpath} and pass --metadata "
            f"""'{{"{DATA_DIR_KEY}": "<data_dir>"}}' or set {DATA_DIR_ENV}=<data_dir>"""
        )


# Pinned upstream commits (the newest at the time of pinning; the files have not changed since).
CCQA_COMMIT = "ef3c9da03fc17f46fbd95ce860e0a55c51ed3606"  # HanjieChen/ChallengeClinicalQA, 2024-08-21
OPHIUCHUS_COMMIT = "34c60f0b83f570507131de5d3c97799bea03e74e"  # SPIRAL-MED/Ophiuchus, 2025-01-14
MEDQA_HUB_REVISION = "0fb93dd23a7339b6dcd27e241cb9b5eca62d4d18"  # GBaker/MedQA-USMLE-4-options, main
_CCQA = f"https://raw.githubusercontent.com/HanjieChen/ChallengeClinicalQA/{CCQA_COMMIT}"
_OPHIUCHUS = f"https://raw.githubusercontent.com/SPIRAL-MED/Ophiuchus/{OPHIUCHUS_COMMIT}"

FILES: dict[str, DataFile] = {
    f.key: f
    for f in (
        DataFile(
            "medqa",
            "medqa/medqa_us_test_4options.jsonl",
            "MedQA USMLE test set, 4 options (JSONL)",
            hub=("GBaker/MedQA-USMLE-4-options", "test"),
            revision=MEDQA_HUB_REVISION,
            # xk-huang/medagents-benchmark data/medqa/test.jsonl (jind11/MedQA with realidx)
            sha256="b0536be0ff396be91eb0cf61a42056b0abef06a23e7e8be491d62fd959b77b72",
        ),
        DataFile(
            "medqa_train",
            "medqa/medqa_us_train_4options.jsonl",
            "MedQA USMLE train set, 4 options (JSONL; distillation input, never evaluated)",
            hub=("GBaker/MedQA-USMLE-4-options", "train"),
            revision=MEDQA_HUB_REVISION,
        ),
        DataFile(
            "medqa_op5",
            "medqa/medqa_us_test_5options.jsonl",
            "MedQA USMLE test set, 5 options (JSONL)",
            how_to_get="it has no download source: take eval_data/medqa_test.jsonl from "
            "https://github.com/UCSC-VLAA/MedReason",
            sha256="cfa75cbcc53c29b023752b0a395ff49d8202121041392735ae44771a5ec734a3",  # MedReason's copy
        ),
        DataFile(
            "medbullets",
            "medbullets/medbullets_op5.csv",
            "Medbullets, 5 options (CSV)",
            url=f"{_CCQA}/medbullets/medbullets_op5.csv",
            revision=CCQA_COMMIT,
            sha256="7da4b1397418b4bd15074066ea6a377ac44a599794a959cd8ebc76937ea597e6",
        ),
        DataFile(
            "medbullets_op4",
            "medbullets/medbullets_op4.csv",
            "Medbullets, 4 options (CSV)",
            url=f"{_CCQA}/medbullets/medbullets_op4.csv",
            revision=CCQA_COMMIT,
            sha256="f35c24c7940fd3fd28594a4081e66bded3718cd98b4491d0f307d34ceb945893",
        ),
        DataFile(
            "jama",
            "jama/jama_raw.csv",
            "scraped JAMA Clinical Challenge cases (jama_raw.csv)",
            how_to_get="JAMA cases are copyrighted and never shipped: run jama_scraper.py from "
            "https://github.com/HanjieChen/ChallengeClinicalQA (with access to JAMA full text); "
            "it writes jama_raw.csv",
        ),
        DataFile(
            "jama_subset",
            "jama/jama_test_urls_646.json",
            "the 646-case JAMA evaluation subset (JSON list of URLs)",
            url=f"{_OPHIUCHUS}/resources/JAMA_test_urls.json",
            revision=OPHIUCHUS_COMMIT,
            sha256="86104b122288c39d80335f6c2c1910e0ea3f93c76c4de750466d6dd7ce57ec19",
        ),
        DataFile(
            "jama_key",
            "jama/jama_links.json",
            "JAMA answer key (jama_links.json)",
            optional=True,
            sha256="a062df30517552a0c9085053a7d5d08a8fb49b5227e8cf12233b4dd9d064212e",  # ChallengeClinicalQA's
        ),
    )
}


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
