"""Load every benchmark of the registry into one case schema, checking every row.

A case is ``{id, question, options: {letter: text}, answer_idx, answer, meta}``
whatever the source format. A bad row is a ``DataError`` whose
one-line message names the file and the row, never a silent skip. Which loader reads a
benchmark is its registry row's ``format``, a key of ``FORMATS``: a new file format is one
entry there and one function that turns a record into a case.

Positions in messages are 1-based:

- JSONL (MedQA, MedMCQA's dev.json): ``line N``, the physical line of the file (blank lines count).
- CSV (Medbullets, JAMA): ``row N`` counts the header as row 1, as a spreadsheet
  does, so the first case is row 2; quoted fields may span several lines, so when the
  record starts on another physical line it is added: ``row 17 (line 40)``.
- JSON lists (JAMA URL list, answer key): ``item N``, the element's 1-based position.
- Hub datasets: ``index N``, the 0-based index of the split (as ``dataset[N]``).

Where each file comes from (metadata keys, environment variables, downloads) is
``lm_eval_medreason.data.sources``; ``load_cases`` joins the two, and ``load_cases_with_provenance``
also says where every file came from and fingerprints the cases (``cases_sha256``), for the record
of a run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from lm_eval_medreason.data import sources
from lm_eval_medreason.data.registry import BENCHMARKS, TRAIN_SPLITS, Benchmark
from lm_eval_medreason.errors import DataError

__all__ = [
    "BENCHMARKS", "FORMATS", "TRAIN_SPLITS", "Benchmark", "cases_sha256", "describe", "iter_jsonl", "load_cases",
    "load_cases_with_provenance", "load_file",
]

OPTION_COLUMNS = ("opa", "opb", "opc", "opd", "ope")
LETTERS = "ABCDEFGHIJ"
CSV_REQUIRED = ("link", "question", "opa", "opb", "answer_idx")
JSONL_REQUIRED = ("question", "options", "answer_idx")
MEDMCQA_REQUIRED = ("id", "question", "opa", "opb", "opc", "opd", "cop")


# ---------------------------------------------------------------- public API


def load_file(benchmark: str, path) -> list[dict]:
    """Parse and check one local file in ``benchmark``'s upstream format (JAMA: the scraped CSV, no subset join)."""
    spec = _benchmark(benchmark)
    return _parse(spec, _read_text(Path(path), str(path), FORMATS[spec.format].csv), str(path))


def load_cases(benchmark: str, metadata: Mapping | None = None) -> list[dict]:
    """The cases an lm-eval task evaluates: resolve the files, load and check them, join the JAMA subset."""
    return load_cases_with_provenance(benchmark, metadata)[0]


def load_cases_with_provenance(benchmark: str, metadata: Mapping | None = None) -> tuple[list[dict], dict]:
    """``load_cases`` plus the record of where they came from: ``{benchmark, files: {key: sources.provenance},
    cases, cases_sha256}``, so that a run's results say exactly which questions it scored."""
    spec = _benchmark(benchmark)
    files: dict[str, dict] = {}
    source = sources.resolve(spec.source.key, metadata)
    cases = _load_source(spec, source, files)
    if spec.subset:
        cases = _select_subset(cases, sources.resolve(spec.subset.key, metadata), source.location, files)
    if spec.exclude:
        excluded = set(_read_url_list(sources.resolve(spec.exclude.key, metadata), files))
        cases = [case for case in cases if case["id"] not in excluded]
        if not cases:
            raise DataError(f"{source.location}: every case is in the evaluation subset; nothing is left to train on")
    if spec.answer_key:
        key = sources.resolve(spec.answer_key.key, metadata)
        if key is not None:
            _check_answer_key(cases, key, files)
    return cases, {"benchmark": spec.name, "files": files, "cases": len(cases), "cases_sha256": cases_sha256(cases)}


def cases_sha256(cases: list[dict]) -> str:
    """Fingerprint of loaded cases: sha256 of their JSON Lines in load order (keys sorted, separators ``,``
    and ``:`` without spaces, non-ASCII kept, UTF-8), so that equal questions give equal hashes whatever
    file format or path they were read from."""
    lines = (json.dumps(case, sort_keys=True, ensure_ascii=False, separators=(",", ":")) for case in cases)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def load_case_file(path) -> list[dict]:
    """Cases from a JSONL file already in the case schema (``{id, question, options, answer_idx, answer, meta}``),
    every row checked like the benchmark loaders' (used by ``medreason distill --input FILE``)."""
    path = Path(path)
    cases, first = [], {}
    for pos, record in iter_jsonl(path):
        where = f"{path} {pos}"
        missing = [k for k in ("id", "question", "options", "answer_idx") if k not in record]
        if missing:
            raise DataError(f"{where}: missing key(s) {', '.join(missing)} (a case is {{id, question, options, answer_idx, answer, meta}})")
        if not isinstance(record["options"], dict):
            raise DataError(f"{where}: options must be an object of letter -> text, got {type(record['options']).__name__}")
        case_id = str(record["id"]).strip()
        if not case_id:
            raise DataError(f"{where}: id is empty")
        if case_id in first:
            raise DataError(f"{where}: duplicate id {case_id!r} (first at {first[case_id]})")
        first[case_id] = pos
        meta = record.get("meta") or {}
        if not isinstance(meta, dict):
            raise DataError(f"{where}: meta must be an object, got {type(meta).__name__}")
        cases.append(_case(where, case_id=case_id, question=record["question"], options=record["options"],
                           answer_idx=record["answer_idx"], answer=record.get("answer"), meta=meta))
    if not cases:
        raise DataError(f"{path}: no cases")
    return cases


def iter_jsonl(path) -> Iterator[tuple[str, dict]]:
    """Yield ("line N", object) for each non-blank line of a JSONL file; unreadable files and bad lines are DataErrors."""
    path = Path(path)
    yield from _jsonl_records(_read_text(path, str(path)), str(path))


def describe(benchmark: str, path, cases: list[dict]) -> str:
    """A short summary for ``medreason data validate``: the file's sha256 against the pinned upstream copy,
    counts, options per case, gold letters, MedQA steps."""
    spec = _benchmark(benchmark)
    lines = [
        f"file:         {path}",
        f"sha256:       {_pin_summary(spec, Path(path))}",
        f"benchmark:    {spec.name} ({spec.description})",
        f"cases:        {len(cases)}",
        f"options:      {_options_summary(cases)}",
        f"gold letters: {_gold_summary(cases)}",
    ]
    if any("step" in case["meta"] for case in cases):
        lines.append(f"steps:        {_distribution(Counter(c['meta'].get('step', '') for c in cases))}")
    return "\n".join(lines)


# ---------------------------------------------------------------- orchestration


def _benchmark(name: str) -> Benchmark:
    """Look a benchmark up, with an error that lists the known names."""
    spec = BENCHMARKS.get(name) or TRAIN_SPLITS.get(name)
    if spec is None:
        raise DataError(f"unknown benchmark {name!r}; known: {', '.join(sorted({**BENCHMARKS, **TRAIN_SPLITS}))}")
    return spec


def _load_source(spec: Benchmark, source: sources.Source, files: dict) -> list[dict]:
    """Load the cases of a resolved source: hub rows, or a local/downloaded file (recorded in ``files``)."""
    if source.kind == "hub":
        label = f"hub dataset {source.location} (split {source.file.hub[1]})"
        rows = sources.hub_rows(source)
        files[source.file.key] = sources.provenance(source)
        return _build_cases(((f"index {i}", row) for i, row in enumerate(rows)), spec, label, hub=True)
    return _parse(spec, _read_source(source, files, FORMATS[spec.format].csv), source.location)


def _read_source(source: sources.Source, files: dict, csv_rows: bool = False) -> str:
    """Fetch a path or url source and decode it, recording its provenance (sha256 included) in ``files``."""
    raw = _read_bytes(sources.fetch(source), source.location)
    files[source.file.key] = sources.provenance(source, raw)
    return _decode(raw, source.location, csv_rows)


def _parse(spec: Benchmark, text: str, label: str) -> list[dict]:
    """Parse decoded text in the benchmark's format and build checked cases."""
    return _build_cases(FORMATS[spec.format].records(text, label), spec, label)


def _build_cases(records: Iterable[tuple[str, dict]], spec: Benchmark, label: str, hub: bool = False) -> list[dict]:
    """Turn (position, record) pairs into cases, checking each row and that ids are unique."""
    build = FORMATS[spec.format].case_of(hub)
    cases: list[dict] = []
    first_seen: dict[str, str] = {}
    for index, (pos, record) in enumerate(records):
        where = f"{label} {pos}"
        case = build(record, index, where, spec.meta)
        if case["id"] in first_seen:
            raise DataError(f"{where}: duplicate id {case['id']!r} (first at {first_seen[case['id']]})")
        first_seen[case["id"]] = pos
        cases.append(case)
    if not cases:
        raise DataError(f"{label}: no cases (the file has no data rows)")
    return cases


# ---------------------------------------------------------------- reading files


def _read_text(path: Path, label: str, csv_rows: bool = False) -> str:
    """Read a whole file as UTF-8 (a BOM is dropped); unreadable, non-UTF-8 or empty files are DataErrors."""
    return _decode(_read_bytes(path, label), label, csv_rows)


def _read_bytes(path: Path, label: str) -> bytes:
    """A file's bytes; a folder, a missing or an unreadable file is a DataError."""
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{label}: is a folder, not a file") from None
    except FileNotFoundError:
        raise DataError(f"{label}: no such file") from None
    except OSError as err:
        raise DataError(f"{label}: cannot read ({err.strerror or err})") from None


def _decode(raw: bytes, label: str, csv_rows: bool = False) -> str:
    """Bytes as UTF-8 text (a BOM is dropped); non-UTF-8 or empty content is a DataError naming the position."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{label} {_byte_position(raw, err.start, csv_rows)}: not UTF-8 "
            f"(byte 0x{raw[err.start]:02x} at offset {err.start}); re-save the file as UTF-8"
        ) from None
    if not text.strip():
        raise DataError(f"{label}: file is empty")
    return text


def _byte_position(raw: bytes, offset: int, csv_rows: bool) -> str:
    """Where a byte offset falls: 'line N', or for CSV the row (found by parsing the valid text before it)."""
    line = raw.count(b"\n", 0, offset) + 1
    if not csv_rows:
        return f"line {line}"
    prefix = raw[:offset].decode("utf-8-sig")
    try:
        # One more character either extends the last record or starts the next: that record is the bad row.
        row = sum(1 for _ in csv.reader(io.StringIO(prefix + "x", newline="")))
    except csv.Error:
        return f"line {line}"
    return f"row {row}" if row == line else f"row {row} (line {line})"


def _jsonl_records(text: str, label: str) -> Iterator[tuple[str, dict]]:
    """Yield ("line N", object) for each non-blank JSONL line; malformed lines are DataErrors."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{label} line {number}: malformed JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise DataError(f"{label} line {number}: expected a JSON object, got {type(record).__name__}")
        yield f"line {number}", record


def _csv_records(text: str, label: str) -> Iterator[tuple[str, dict]]:
    """Yield ("row N", {column: cell}) per data row after checking the header; malformed CSV is a DataError."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = _csv_rows(reader, label)
    _, header = next(rows)
    header = [name.strip() for name in header]
    _check_header(header, label)
    for pos, fields in rows:
        if not fields:
            continue  # a blank line, as pandas skips it
        if len(fields) != len(header):
            raise DataError(
                f"{label} {pos}: {len(fields)} fields but the header has {len(header)} "
                "(a stray comma or an unbalanced quote?)"
            )
        yield pos, dict(zip(header, fields))


def _csv_rows(reader, label: str) -> Iterator[tuple[str, list[str]]]:
    """Yield (position, fields) per CSV record, turning parser errors into DataErrors naming the row."""
    row = 0
    while True:
        row += 1
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(f"{label} {_row_pos(row, start)}: malformed CSV ({err}); check for an unbalanced quote") from None
        yield _row_pos(row, start), fields


def _row_pos(row: int, line: int) -> str:
    """'row N', with the physical line when a multi-line field earlier shifted it."""
    return f"row {row}" if row == line else f"row {row} (line {line})"


def _check_header(header: list[str], label: str) -> None:
    """The header must be unique and have link, question, answer_idx and option columns opa, opb[, opc, ...]."""
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates:
        raise DataError(f"{label} row 1: duplicate column(s) {', '.join(duplicates)}")
    missing = [name for name in CSV_REQUIRED if name not in header]
    if missing:
        raise DataError(
            f"{label} row 1: missing column(s) {', '.join(missing)} (the header has: {', '.join(header)})"
        )
    present = [name for name in OPTION_COLUMNS if name in header]
    if present != list(OPTION_COLUMNS[: len(present)]):
        raise DataError(f"{label} row 1: option columns must run opa, opb, ... without gaps; found {', '.join(present)}")


# ---------------------------------------------------------------- building cases


def _medqa_case(record: dict, index: int, where: str, meta: tuple) -> dict:
    """A case from a MedQA row: options dict, id from realidx (else the 0-based row number)."""
    missing = [key for key in JSONL_REQUIRED if key not in record]
    if missing:
        raise DataError(f"{where}: missing key(s) {', '.join(missing)}")
    options = record["options"]
    if not isinstance(options, Mapping):
        raise DataError(f"{where}: options must be an object of letter -> text, got {type(options).__name__}")
    realidx = record.get("realidx")
    case_id = str(index) if realidx is None or str(realidx).strip() == "" else str(realidx).strip()
    return _case(
        where,
        case_id=case_id,
        question=record["question"],
        options=dict(options),
        answer_idx=record["answer_idx"],
        answer=record.get("answer"),
        meta={key: _meta_value(record.get(column)) for key, column in meta},
    )


def _csv_case(record: dict, index: int, where: str, meta: tuple) -> dict:
    """A case from a Medbullets/JAMA CSV row: options from opa.., id from the link."""
    link = record["link"].strip()
    if not link:
        raise DataError(f"{where}: link is empty (it is the case id)")
    options = {LETTERS[i]: record[column] for i, column in enumerate(OPTION_COLUMNS) if column in record}
    return _case(
        where,
        case_id=link,
        question=record["question"],
        options=options,
        answer_idx=record["answer_idx"],
        answer=record.get("answer"),
        meta={key: _meta_value(record.get(column)) for key, column in meta},
    )


def _medmcqa_case(record: dict, index: int, where: str, meta: tuple, first: int = 1) -> dict:
    """A case from a MedMCQA row: options opa..opd, id from ``id``, gold option ``cop`` counted from ``first``
    (1 in dev.json of the original release, 0 in the hub dataset, whose loading script subtracted 1)."""
    missing = [key for key in MEDMCQA_REQUIRED if key not in record]
    if missing:
        hint = " (the release's test.json has no answers; evaluate dev.json)" if missing == ["cop"] else ""
        raise DataError(f"{where}: missing key(s) {', '.join(missing)}{hint}")
    cop, last = record["cop"], first + 3
    if isinstance(cop, bool) or not isinstance(cop, int) or not first <= cop <= last:
        origin = ("dev.json of the release numbers the options 1-4; rows exported from the hub dataset, "
                  "numbered 0-3, need 1 added") if first else "the hub dataset numbers the options 0-3"
        raise DataError(f"{where}: cop {cop!r} is not an option number {first}-{last} ({origin})")
    case_id = _text(record["id"], "id", where)
    if not case_id:
        raise DataError(f"{where}: id is empty")
    return _case(
        where,
        case_id=case_id,
        question=record["question"],
        options={LETTERS[i]: record[column] for i, column in enumerate(OPTION_COLUMNS[:4])},
        answer_idx=LETTERS[cop - first],
        answer=None,
        meta={key: _meta_value(record.get(column)) for key, column in meta},
    )


def _medmcqa_hub_case(record: dict, index: int, where: str, meta: tuple) -> dict:
    """A case from a row of the hub dataset openlifescienceai/medmcqa (``cop`` 0-3)."""
    return _medmcqa_case(record, index, where, meta, first=0)


def _meta_value(value) -> str:
    """Meta fields are strings; a missing or null value becomes ''."""
    return "" if value is None else str(value).strip()


def _case(where: str, *, case_id: str, question, options: dict, answer_idx, answer, meta: dict) -> dict:
    """Check the parts every format shares and assemble the case in the one schema."""
    question = _text(question, "question", where)
    if not question:
        raise DataError(f"{where}: question is empty")
    options = _options(options, where)
    letter = _text(answer_idx, "answer_idx", where)
    if letter not in options:
        raise DataError(f"{where}: answer_idx {letter!r} is not among the option letters {_letter_range(options)}")
    _check_answer_text(answer, letter, options[letter], where)
    return {
        "id": case_id,
        "question": question,
        "options": options,
        "answer_idx": letter,
        "answer": options[letter],
        "meta": meta,
    }


def _text(value, name: str, where: str) -> str:
    """A text field, stripped; numbers and other non-text values are errors, not silently converted."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: {name} must be text, got {type(value).__name__}")
    return value.strip()


def _options(options: dict, where: str) -> dict[str, str]:
    """Options must be letters A, B, ... without gaps, at least two, each with non-empty text."""
    letters = sorted(str(key).strip() for key in options)
    if letters != list(LETTERS[: len(letters)]):
        raise DataError(f"{where}: option letters must run A, B, ... without gaps; found {', '.join(letters) or 'none'}")
    if len(letters) < 2:
        raise DataError(f"{where}: needs at least two options, found {len(letters)}")
    checked = {}
    for key, value in sorted(options.items(), key=lambda item: str(item[0]).strip()):
        letter = str(key).strip()
        checked[letter] = _text(value, f"option {letter}", where)
        if not checked[letter]:
            raise DataError(f"{where}: option {letter} is empty")
    return checked


def _check_answer_text(answer, letter: str, option: str, where: str) -> None:
    """When the row also gives the answer text, it must be the gold option's text (whitespace-insensitive)."""
    answer = _text(answer, "answer", where)
    if answer and _squash(answer) != _squash(option):
        raise DataError(
            f"{where}: answer {_snip(answer)} does not match option {letter} {_snip(option)} (answer_idx {letter})"
        )


def _squash(text: str) -> str:
    """Collapse runs of whitespace so that line breaks and double spaces do not count as differences."""
    return " ".join(text.split())


def _snip(text: str, limit: int = 60) -> str:
    """Quote a text for a one-line message, shortened."""
    text = _squash(text)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _letter_range(options: Mapping) -> str:
    """'A-E' for the option letters of a case."""
    letters = sorted(options)
    return f"{letters[0]}-{letters[-1]}"


@dataclass(frozen=True)
class Format:
    """A file format: how its text becomes (position, record) pairs and how a record becomes a case
    (``hub_case`` for the hub dataset's rows, when they differ from the file's)."""

    records: Callable[[str, str], Iterator[tuple[str, dict]]]
    case: Callable[[dict, int, str, tuple], dict]
    hub_case: Callable[[dict, int, str, tuple], dict] | None = None

    @property
    def csv(self) -> bool:
        """Positions are CSV rows (a byte error is located by parsing), not lines."""
        return self.records is _csv_records

    def case_of(self, hub: bool) -> Callable[[dict, int, str, tuple], dict]:
        return self.hub_case if hub and self.hub_case else self.case


# registry.Benchmark.format -> its loader
FORMATS: dict[str, Format] = {
    "medqa_jsonl": Format(_jsonl_records, _medqa_case),  # MedQA rows {question, options, answer_idx, ...}
    "ccqa_csv": Format(_csv_records, _csv_case),  # ChallengeClinicalQA columns link, question, opa.., answer_idx
    "medmcqa_jsonl": Format(_jsonl_records, _medmcqa_case, _medmcqa_hub_case),  # MedMCQA id, question, opa..opd, cop
}


# ---------------------------------------------------------------- JAMA subset and answer key


def _select_subset(cases: list[dict], source: sources.Source, cases_label: str, files: dict) -> list[dict]:
    """Keep the cases whose link is in the URL list, in the list's order; a listed link not scraped is an error."""
    urls = _read_url_list(source, files)
    by_link = {case["id"]: case for case in cases}
    missing = [url for url in urls if url not in by_link]
    if missing:
        raise DataError(
            f"{cases_label} lacks {len(missing)} of the {len(urls)} cases listed in {source.location} "
            f"(first missing: {missing[0]}); re-run jama_scraper.py to fetch them (it skips pages it could not "
            "read), or evaluate jama_full to use every scraped case"
        )
    return [by_link[url] for url in urls]


def _read_url_list(source: sources.Source, files: dict) -> list[str]:
    """A JSON list of unique, non-empty URL strings."""
    label = source.location
    items = _json_list(_read_source(source, files), label)
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, str) or not item.strip():
            raise DataError(f"{label} item {number}: expected a non-empty URL string, got {item!r}")
        if item.strip() in seen:
            raise DataError(f"{label} item {number}: duplicate URL {item.strip()}")
        seen.add(item.strip())
    return [item.strip() for item in items]


def _check_answer_key(cases: list[dict], source: sources.Source, files: dict) -> None:
    """Every case whose link is in the answer key must have the key's answer_idx."""
    key = _read_answer_key(source, files)
    for case in cases:
        expected = key.get(case["id"])
        if expected is not None and expected != case["answer_idx"]:
            raise DataError(
                f"{source.location}: the answer key says {case['id']} is {expected!r} but the scraped file has "
                f"{case['answer_idx']!r}; re-scrape that case or fix its answer_idx"
            )


def _read_answer_key(source: sources.Source, files: dict) -> dict[str, str]:
    """Map link -> answer_idx from a jama_links.json-style list of {id, link, answer_idx, answer}."""
    label = source.location
    key: dict[str, str] = {}
    for number, item in enumerate(_json_list(_read_source(source, files), label), start=1):
        if not isinstance(item, dict) or not isinstance(item.get("link"), str) or not isinstance(item.get("answer_idx"), str):
            raise DataError(f"{label} item {number}: expected an object with text 'link' and 'answer_idx'")
        link = item["link"].strip()
        if link in key:
            raise DataError(f"{label} item {number}: duplicate link {link}")
        key[link] = item["answer_idx"].strip()
    return key


def _json_list(text: str, label: str) -> list:
    """Parse JSON text that must hold a non-empty list."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{label} line {err.lineno}: malformed JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(value, list) or not value:
        raise DataError(f"{label}: expected a non-empty JSON list, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------- summaries


def _pin_summary(spec: Benchmark, path: Path) -> str:
    """The file's sha256 and whether it is the pinned upstream copy of the benchmark's source file."""
    digest = hashlib.sha256(_read_bytes(path, str(path))).hexdigest()
    file = sources.FILES[spec.source.key]
    if not file.sha256:
        return f"{digest} (no pinned upstream copy to compare with)"
    if digest == file.sha256:
        return f"{digest} (the pinned upstream {Path(file.relpath).name})"
    return f"{digest} (differs from the pinned upstream {Path(file.relpath).name}, {file.sha256})"


def _options_summary(cases: list[dict]) -> str:
    """'5 per case', or the mix when cases differ."""
    counts = Counter(len(case["options"]) for case in cases)
    if len(counts) == 1:
        return f"{next(iter(counts))} per case"
    return ", ".join(f"{n} options: {count} cases" for n, count in sorted(counts.items()))


def _gold_summary(cases: list[dict]) -> str:
    """Counts and shares of each gold letter, listing every option letter (zeros included)."""
    letters = sorted({letter for case in cases for letter in case["options"]})
    counts = Counter(case["answer_idx"] for case in cases)
    return _distribution({letter: counts.get(letter, 0) for letter in letters})


def _distribution(counts: Mapping[str, int]) -> str:
    """'A 61 (19.8%), B 74 (24.0%)' in key order."""
    total = sum(counts.values()) or 1
    return ", ".join(f"{key} {count} ({100 * count / total:.1f}%)" for key, count in sorted(counts.items()))

