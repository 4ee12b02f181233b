"""The loaders: one case schema for every benchmark, a one-line error naming file and row for every bad input,
the source precedence (metadata > environment > default), the JAMA subset join, and the real shared files."""

import dataclasses
import json
import logging
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_medreason.data import loaders, sources
from lm_eval_medreason.data.loaders import BENCHMARKS, describe, load_cases, load_file
from lm_eval_medreason.errors import DataError
from tests.support.synthetic import (
    JAMA_COLUMNS,
    jama_link,
    jama_rows,
    jama_rows_for_key,
    medbullets_columns,
    medbullets_rows,
    medqa_rows,
    write_csv,
    write_data_dir,
    write_json,
    write_jsonl,
)

pytestmark = pytest.mark.usefixtures("clean_env")

N_OPTIONS = {"medqa": 4, "medqa_op5": 5, "medbullets": 5, "medbullets_op4": 4, "jama": 4, "jama_full": 4,
             "medreason_medmcqa": 4}
FILE_OF = {"medqa": "medqa", "medqa_op5": "medqa_op5", "medbullets": "medbullets",
           "medbullets_op4": "medbullets_op4", "jama": "jama", "jama_full": "jama", "medreason_medmcqa": "medmcqa"}


def assert_case_schema(case: dict, n_options: int) -> None:
    """A case has exactly the one case schema (id, question, options, answer_idx, answer, meta), with consistent gold letter and text."""
    assert set(case) == {"id", "question", "options", "answer_idx", "answer", "meta"}
    assert isinstance(case["id"], str) and case["id"]
    assert isinstance(case["question"], str) and case["question"].strip() == case["question"] != ""
    assert list(case["options"]) == list("ABCDE"[:n_options])
    assert all(isinstance(text, str) and text for text in case["options"].values())
    assert case["answer"] == case["options"][case["answer_idx"]]
    assert isinstance(case["meta"], dict)


def assert_one_line_error(err: pytest.ExceptionInfo, *fragments: str) -> str:
    """The message is one line and contains every fragment (file, position, problem)."""
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# ---------------------------------------------------------------- synthetic files, every benchmark


def test_benchmark_names():
    assert set(BENCHMARKS) == set(N_OPTIONS)
    for name, spec in BENCHMARKS.items():
        assert spec.name == name and sources.FILES[spec.source.key] is spec.source
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.name = "other"


@pytest.mark.parametrize("name", sorted(N_OPTIONS))
def test_load_cases_from_data_dir(name, synthetic_data):
    # lm-eval merges model_args and the task's own metadata in: unknown keys are ignored.
    metadata = {"data_dir": str(synthetic_data["root"]), "pretrained": "tiny", "version": 1.0}
    cases = load_cases(name, metadata)
    assert [case["id"] for case in cases] == synthetic_data["ids"][name]
    assert [case["answer_idx"] for case in cases] == synthetic_data["gold"][name]
    for case in cases:
        assert_case_schema(case, N_OPTIONS[name])
    assert len(set(synthetic_data["gold"][name])) > 1, "synthetic gold letters should vary"


@pytest.mark.parametrize("name", sorted(N_OPTIONS))
def test_load_file_reads_the_upstream_file(name, synthetic_data):
    path = synthetic_data["paths"][FILE_OF[name]]
    cases = load_file(name, path)
    whole = "jama_full" if name == "jama" else name  # load_file never joins the subset
    assert [case["id"] for case in cases] == synthetic_data["ids"][whole]
    assert load_file(name, str(path)) == cases


def test_medqa_meta_and_ids(synthetic_data):
    rows = [json.loads(line) for line in synthetic_data["paths"]["medqa"].read_text().splitlines()]
    cases = load_cases("medqa", {"data_dir": str(synthetic_data["root"])})
    assert [case["id"] for case in cases] == [str(row["realidx"]) for row in rows]
    assert [case["meta"] for case in cases] == [{"step": row["meta_info"]} for row in rows]
    assert {case["meta"]["step"] for case in cases} == {"step1", "step2&3"}
    # Without realidx (the 5-option file, the hub copy), ids are 0-based row numbers.
    op5 = load_cases("medqa_op5", {"data_dir": str(synthetic_data["root"])})
    assert [case["id"] for case in op5] == [str(i) for i in range(len(op5))]


def test_medbullets_and_jama_meta(synthetic_data):
    root = {"data_dir": str(synthetic_data["root"])}
    for case in load_cases("medbullets", root):
        assert case["meta"] == {"link": case["id"]}
        assert case["id"].startswith("https://step2.medbullets.com/")
    full = load_cases("jama_full", root)
    for case in full:
        assert set(case["meta"]) == {"link", "field"} and case["meta"]["link"] == case["id"]
    assert "" in {case["meta"]["field"] for case in full}, "field may be empty"
    assert "Dermatology" in {case["meta"]["field"] for case in full}


def test_medbullets_op4_keeps_the_gold_text(synthetic_data):
    root = {"data_dir": str(synthetic_data["root"])}
    op5 = {case["id"]: case for case in load_cases("medbullets", root)}
    for case in load_cases("medbullets_op4", root):
        assert case["answer"] == op5[case["id"]]["answer"]


def test_jama_without_field_column(tmp_path):
    rows = jama_rows(3)
    path = write_csv(tmp_path / "jama_raw.csv", rows, [c for c in JAMA_COLUMNS if c != "field"])
    assert [case["meta"]["field"] for case in load_file("jama_full", path)] == ["", "", ""]


def test_utf8_bom_is_accepted(tmp_path):
    csv_path = write_csv(tmp_path / "b.csv", medbullets_rows(3), medbullets_columns(5))
    csv_path.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    assert len(load_file("medbullets", csv_path)) == 3
    jsonl_path = write_jsonl(tmp_path / "m.jsonl", medqa_rows(3))
    jsonl_path.write_bytes(b"\xef\xbb\xbf" + jsonl_path.read_bytes())
    assert len(load_file("medqa", jsonl_path)) == 3


def test_answer_text_compared_ignoring_whitespace(tmp_path):
    rows = medqa_rows(2)
    rows[1]["answer"] = "  " + "\n ".join(rows[1]["answer"].split(" ")) + " "
    cases = load_file("medqa", write_jsonl(tmp_path / "m.jsonl", rows))
    assert cases[1]["answer"] == rows[1]["options"][rows[1]["answer_idx"]]


def test_answer_column_may_be_absent_or_empty(tmp_path):
    rows = medbullets_rows(3)
    rows[0]["answer"] = ""
    cases = load_file("medbullets", write_csv(tmp_path / "b.csv", rows, medbullets_columns(5)))
    assert cases[0]["answer"] == cases[0]["options"][cases[0]["answer_idx"]]
    medqa = medqa_rows(2)
    del medqa[0]["answer"]
    assert load_file("medqa", write_jsonl(tmp_path / "m.jsonl", medqa))[0]["answer"] == medqa_rows(2)[0]["answer"]


def test_blank_lines_are_skipped_but_counted(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", medqa_rows(3))
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n\n" + lines[1] + "\n" + json.dumps({"question": ""}) + "\n")
    with pytest.raises(DataError) as err:
        load_file("medqa", path)
    assert_one_line_error(err, f"{path} line 4:")


# ---------------------------------------------------------------- every bad input: one line naming file and row


def _medqa_broken(mutate):
    """A 4-row MedQA JSONL writer whose third row (line 3) is mutated."""
    def write(path: Path) -> Path:
        rows = medqa_rows(4)
        mutate(rows[2], rows)
        return write_jsonl(path, rows)
    return write


def _medbullets_broken(mutate, columns=None):
    """A 4-row Medbullets CSV writer whose third data row (row 4: the header is row 1) is mutated."""
    def write(path: Path) -> Path:
        rows = medbullets_rows(4)
        mutate(rows[2], rows)
        return write_csv(path, rows, columns or medbullets_columns(5))
    return write


def _set(**changes):
    """A row mutation that sets fields."""
    return lambda row, rows: row.update(changes)


def _raw(content: bytes):
    """A writer of exactly these bytes."""
    def write(path: Path) -> Path:
        path.write_bytes(content)
        return path
    return write


def _medqa_lines(replace_third):
    """A MedQA JSONL writer whose line 3 is replaced by raw bytes."""
    def write(path: Path) -> Path:
        lines = write_jsonl(path, medqa_rows(4)).read_bytes().split(b"\n")
        lines[2] = replace_third
        path.write_bytes(b"\n".join(lines))
        return path
    return write


def _medbullets_text(transform):
    """A Medbullets CSV writer whose whole text (as bytes) passes through transform."""
    def write(path: Path) -> Path:
        path = write_csv(path, medbullets_rows(4), medbullets_columns(5))
        path.write_bytes(transform(path.read_bytes()))
        return path
    return write


def _third_record_start(raw: bytes) -> int:
    """Byte offset where data row 3 (record row 4) starts in a synthetic Medbullets file."""
    link = medbullets_rows(4)[2]["link"].encode()
    return raw.index(link)


BAD_MEDQA = {
    "empty question": (_medqa_broken(_set(question="   ")), "line 3: question is empty"),
    "one option": (_medqa_broken(_set(options={"A": "Aspirin"}, answer_idx="A", answer="Aspirin")),
                   "line 3: needs at least two options"),
    "bad answer_idx": (_medqa_broken(_set(answer_idx="F")),
                       "line 3: answer_idx 'F' is not among the option letters A-D"),
    "answer mismatch": (_medqa_broken(_set(answer="Observation only")),
                        "line 3: answer 'Observation only' does not match option"),
    "duplicate id": (_medqa_broken(lambda row, rows: row.update(realidx=rows[0]["realidx"])),
                     "line 3: duplicate id '100' (first at line 1)"),
    "empty option": (_medqa_broken(lambda row, rows: row["options"].update(B=" ")), "line 3: option B is empty"),
    "option gap": (_medqa_broken(lambda row, rows: row["options"].pop("C")), "line 3: option letters must run"),
    "missing key": (_medqa_broken(lambda row, rows: row.pop("options")), "line 3: missing key(s) options"),
    "options not an object": (_medqa_broken(_set(options=["x", "y"])), "line 3: options must be an object"),
    "non-text question": (_medqa_broken(_set(question=42)), "line 3: question must be text"),
    "malformed line": (_medqa_lines(b'{"question": "A 40-year-old man", "options": '), "line 3: malformed JSON"),
    "not an object": (_medqa_lines(b"[1, 2]"), "line 3: expected a JSON object"),
    "not UTF-8": (_medqa_lines('{"question": "caf\u00e9"}'.encode("latin-1")), "line 3: not UTF-8 (byte 0xe9"),
    "empty file": (_raw(b""), ": file is empty"),
    "only blank lines": (_raw(b"\n \r\n\n"), ": file is empty"),
}

BAD_MEDBULLETS = {
    "empty question": (_medbullets_broken(_set(question="")), "row 4 (line 10): question is empty"),
    "bad answer_idx": (_medbullets_broken(_set(answer_idx="F")),
                       "row 4 (line 10): answer_idx 'F' is not among the option letters A-E"),
    "answer mismatch": (_medbullets_broken(_set(answer="Warfarin")), "row 4 (line 10): answer 'Warfarin' does not match"),
    "duplicate id": (_medbullets_broken(lambda row, rows: row.update(link=rows[0]["link"])),
                     "row 4 (line 10): duplicate id"),
    "empty option cell": (_medbullets_broken(_set(ope="")), "row 4 (line 10): option E is empty"),
    "empty link": (_medbullets_broken(_set(link=" ")), "row 4 (line 10): link is empty"),
    "one option column": (_medbullets_broken(lambda row, rows: None,
                                             ["link", "question", "opa", "answer_idx", "explanation"]),
                          "row 1: missing column(s) opb"),
    "missing column": (_medbullets_broken(lambda row, rows: None,
                                          [c for c in medbullets_columns(5) if c != "answer_idx"]),
                       "row 1: missing column(s) answer_idx"),
    "option column gap": (_medbullets_broken(lambda row, rows: None,
                                             [c for c in medbullets_columns(5) if c != "opc"]),
                          "row 1: option columns must run opa, opb"),
    "unbalanced quote": (_medbullets_text(lambda raw: raw[: _third_record_start(raw)] + b'"'
                                          + raw[_third_record_start(raw):]),
                         "row 4 (line 10): malformed CSV"),
    "text after closing quote": (_medbullets_text(lambda raw: raw.replace(b'"The answer is', b'"x"y, "The answer is', 1)),
                                 "row 2: malformed CSV"),
    "wrong column count": (_medbullets_text(lambda raw: raw[: _third_record_start(raw)] + b"extra,"
                                            + raw[_third_record_start(raw):]),
                           "row 4 (line 10): 11 fields but the header has 10"),
    "not UTF-8": (_medbullets_text(lambda raw: raw[: _third_record_start(raw)] + "caf\u00e9".encode("latin-1")
                                   + raw[_third_record_start(raw):]),
                  "row 4 (line 10): not UTF-8 (byte 0xe9"),
    "not UTF-8 in a multi-line field": (_medbullets_text(lambda raw: raw.replace(b"Incorrect answers", b"\xff", 1)),
                                        "row 2 (line 4): not UTF-8 (byte 0xff"),
    "header only": (_medbullets_text(lambda raw: raw.split(b"\r\n")[0] + b"\r\n"), ": no cases"),
    "empty file": (_medbullets_text(lambda raw: b""), ": file is empty"),
    "duplicate column": (_medbullets_text(lambda raw: raw.replace(b"explanation", b"question", 1)),
                         "row 1: duplicate column(s) question"),
}


@pytest.mark.parametrize("problem", sorted(BAD_MEDQA))
def test_bad_medqa_file(problem, tmp_path):
    write, fragment = BAD_MEDQA[problem]
    path = write(tmp_path / "medqa_us_test_4options.jsonl")
    with pytest.raises(DataError) as err:
        load_file("medqa", path)
    assert_one_line_error(err, f"{path}{' ' if fragment[0] != ':' else ''}{fragment}")


@pytest.mark.parametrize("problem", sorted(BAD_MEDBULLETS))
def test_bad_medbullets_file(problem, tmp_path):
    write, fragment = BAD_MEDBULLETS[problem]
    path = write(tmp_path / "medbullets_op5.csv")
    with pytest.raises(DataError) as err:
        load_file("medbullets", path)
    assert_one_line_error(err, f"{path}{' ' if fragment[0] != ':' else ''}{fragment}")


def test_bad_jama_row(tmp_path):
    rows = jama_rows(3)
    rows[1]["answer_idx"] = "E"
    path = write_csv(tmp_path / "jama_raw.csv", rows, JAMA_COLUMNS, lineterminator="\n")
    for name in ("jama", "jama_full"):
        with pytest.raises(DataError) as err:
            load_file(name, path)
        assert_one_line_error(err, f"{path} row 3 (line 4): answer_idx 'E' is not among the option letters A-D")


def test_missing_or_folder_path(tmp_path):
    with pytest.raises(DataError) as err:
        load_file("medqa", tmp_path / "nope.jsonl")
    assert_one_line_error(err, str(tmp_path / "nope.jsonl"), "no such file")
    with pytest.raises(DataError) as err:
        load_file("medqa", tmp_path)
    assert_one_line_error(err, str(tmp_path), "folder")


def test_unknown_benchmark():
    with pytest.raises(DataError) as err:
        load_file("pubmedqa", "x.jsonl")
    assert_one_line_error(err, "unknown benchmark 'pubmedqa'", "medbullets")


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(lambda t: t.strip())


@settings(max_examples=60, deadline=None)
@given(question=_TEXT, option=_TEXT)
def test_csv_and_jsonl_round_trip_any_text(question, option):
    """Commas, quotes, line breaks and any Unicode survive both formats (texts are stripped, nothing else)."""
    with tempfile.TemporaryDirectory() as folder:
        rows = medbullets_rows(2)
        rows[0].update(question=question, opa=option, answer_idx="A", answer=option)
        cases = load_file("medbullets", write_csv(Path(folder) / "b.csv", rows, medbullets_columns(5)))
        assert cases[0]["question"] == question.strip()
        assert cases[0]["options"]["A"] == cases[0]["answer"] == option.strip()
        medqa = medqa_rows(2)
        medqa[0].update(question=question, answer=option, answer_idx="A")
        medqa[0]["options"]["A"] = option
        cases = load_file("medqa", write_jsonl(Path(folder) / "m.jsonl", medqa))
        assert (cases[0]["question"], cases[0]["answer"]) == (question.strip(), option.strip())


# ---------------------------------------------------------------- where files come from


def test_source_precedence(tmp_path, monkeypatch):
    """metadata medqa_path > metadata data_dir > MEDREASON_MEDQA_PATH > MEDREASON_DATA_DIR (told apart by size)."""
    meta_file = write_jsonl(tmp_path / "meta.jsonl", medqa_rows(1))
    meta_dir = write_data_dir(tmp_path / "meta_dir", n=2)["root"]
    env_file = write_jsonl(tmp_path / "env.jsonl", medqa_rows(3))
    env_dir = write_data_dir(tmp_path / "env_dir", n=4)["root"]
    monkeypatch.setenv("MEDREASON_MEDQA_PATH", str(env_file))
    monkeypatch.setenv("MEDREASON_DATA_DIR", str(env_dir))

    metadata = {"medqa_path": str(meta_file), "data_dir": str(meta_dir)}
    assert len(load_cases("medqa", metadata)) == 1
    assert sources.resolve("medqa", metadata).setting == "--metadata medqa_path"
    del metadata["medqa_path"]
    assert len(load_cases("medqa", metadata)) == 2
    assert sources.resolve("medqa", metadata).setting == "--metadata data_dir"
    assert len(load_cases("medqa", {})) == 3
    assert sources.resolve("medqa", None).setting == "MEDREASON_MEDQA_PATH"
    monkeypatch.delenv("MEDREASON_MEDQA_PATH")
    assert len(load_cases("medqa")) == 4
    assert sources.resolve("medqa").setting == "MEDREASON_DATA_DIR"


def test_environ_argument_overrides_process_environment(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", medqa_rows(1))
    source = sources.resolve("medqa", {}, environ={"MEDREASON_MEDQA_PATH": str(path)})
    assert (source.kind, source.location, source.setting) == ("path", str(path), "MEDREASON_MEDQA_PATH")


def test_empty_settings_are_unset(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDREASON_MEDBULLETS_PATH", "")
    assert sources.resolve("medbullets", {"medbullets_path": " ", "data_dir": ""}).setting == "default"


@pytest.mark.parametrize(
    "metadata, env, setting",
    [
        ({"medbullets_path": "{missing}"}, {}, "--metadata medbullets_path"),
        ({"data_dir": "{missing}"}, {}, "--metadata data_dir"),
        ({}, {"MEDREASON_MEDBULLETS_PATH": "{missing}"}, "MEDREASON_MEDBULLETS_PATH"),
        ({}, {"MEDREASON_DATA_DIR": "{missing}"}, "MEDREASON_DATA_DIR"),
    ],
)
def test_configured_path_that_does_not_exist(metadata, env, setting, tmp_path, monkeypatch):
    missing = str(tmp_path / "nowhere" / "medbullets_op5.csv")
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(missing=missing))
    metadata = {key: value.format(missing=missing) for key, value in metadata.items()}
    with pytest.raises(DataError) as err:
        load_cases("medbullets", metadata)
    assert_one_line_error(err, missing, f"(from {setting}) does not exist")


def test_file_setting_naming_a_folder_and_dir_setting_naming_a_file(tmp_path):
    with pytest.raises(DataError) as err:
        sources.resolve("medqa", {"medqa_path": str(tmp_path)})
    assert_one_line_error(err, str(tmp_path), "--metadata medqa_path", "is a folder")
    file = write_jsonl(tmp_path / "m.jsonl", medqa_rows(1))
    with pytest.raises(DataError) as err:
        sources.resolve("medqa", {"data_dir": str(file)})
    assert_one_line_error(err, str(file), "--metadata data_dir", "is not a folder")


def test_data_dir_without_the_file_falls_back_to_the_default(tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    with caplog.at_level(logging.INFO, logger="lm_eval_medreason.data.sources"):
        source = sources.resolve("medbullets", {"data_dir": str(empty)})
    assert (source.kind, source.setting) == ("url", "default")
    assert source.location == sources.FILES["medbullets"].url
    assert str(empty / "medbullets" / "medbullets_op5.csv") in caplog.text
    hub = sources.resolve("medqa", {"data_dir": str(empty)})
    assert (hub.kind, hub.location) == ("hub", "GBaker/MedQA-USMLE-4-options")


def test_data_dir_without_the_file_passes_on_to_the_environment(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    path = write_jsonl(tmp_path / "env.jsonl", medqa_rows(2))
    monkeypatch.setenv("MEDREASON_MEDQA_OP5_PATH", str(path))
    assert sources.resolve("medqa_op5", {"data_dir": str(empty)}).location == str(path)


def test_default_sources():
    """Defaults are pinned to fixed commits (the newest of each repository when pinned), never a branch."""
    ccqa, ophiuchus = "ef3c9da03fc17f46fbd95ce860e0a55c51ed3606", "34c60f0b83f570507131de5d3c97799bea03e74e"
    assert sources.FILES["medbullets"].url == (
        f"https://raw.githubusercontent.com/HanjieChen/ChallengeClinicalQA/{ccqa}/medbullets/medbullets_op5.csv")
    assert sources.FILES["medbullets_op4"].url == (
        f"https://raw.githubusercontent.com/HanjieChen/ChallengeClinicalQA/{ccqa}/medbullets/medbullets_op4.csv")
    assert sources.FILES["jama_subset"].url == (
        f"https://raw.githubusercontent.com/SPIRAL-MED/Ophiuchus/{ophiuchus}/resources/JAMA_test_urls.json")
    assert [sources.FILES[k].revision for k in ("medbullets", "medbullets_op4", "jama_subset")] == [ccqa, ccqa, ophiuchus]
    assert sources.FILES["medqa"].hub == ("GBaker/MedQA-USMLE-4-options", "test")
    assert sources.FILES["medqa"].revision == sources.FILES["medqa_train"].revision == (
        "0fb93dd23a7339b6dcd27e241cb9b5eca62d4d18")
    assert {key for key, file in sources.FILES.items() if not (file.url or file.hub)} == {"medqa_op5", "jama", "jama_key"}


@pytest.mark.parametrize("benchmark", ["jama", "jama_full"])
def test_missing_jama_file_says_how_to_get_it(benchmark, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as err:
        load_cases(benchmark, {"data_dir": str(empty)})
    assert_one_line_error(
        err, "jama_scraper.py", "https://github.com/HanjieChen/ChallengeClinicalQA", "jama_raw.csv",
        '"jama_path"', "MEDREASON_JAMA_PATH", "data_dir", "MEDREASON_DATA_DIR",
        str(empty / "jama" / "jama_raw.csv"),
    )
    with pytest.raises(DataError) as err:
        load_cases(benchmark)
    assert_one_line_error(err, "jama_scraper.py", "MEDREASON_JAMA_PATH", "<data_dir>/jama/jama_raw.csv")


def test_missing_medqa_op5_says_where_it_comes_from():
    with pytest.raises(DataError) as err:
        load_cases("medqa_op5")
    assert_one_line_error(err, "UCSC-VLAA/MedReason", "eval_data/medqa_test.jsonl", '"medqa_op5_path"',
                          "MEDREASON_MEDQA_OP5_PATH", "medqa/medqa_us_test_5options.jsonl")


def test_download_failure_is_one_line_naming_url_and_override(monkeypatch, tmp_path):
    import datasets

    monkeypatch.setattr(datasets.config, "DOWNLOADED_DATASETS_PATH", tmp_path / "downloads")
    url = "http://127.0.0.1:9/medbullets_op5.csv"  # a closed port: fails at once, no network
    monkeypatch.setitem(sources.FILES, "medbullets", dataclasses.replace(sources.FILES["medbullets"], url=url))
    with pytest.raises(DataError) as err:
        load_cases("medbullets")
    assert_one_line_error(err, f"could not download {url}", '"medbullets_path"', "MEDREASON_MEDBULLETS_PATH")


def test_hub_default_for_medqa(monkeypatch):
    import datasets

    calls = []
    rows = medqa_rows(3, realidx=False)

    def fake_load_dataset(name, split=None, **kwargs):
        calls.append((name, split, kwargs))
        return rows

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    cases = load_cases("medqa", {"pretrained": "tiny"})
    assert calls == [("GBaker/MedQA-USMLE-4-options", "test", {"revision": "0fb93dd23a7339b6dcd27e241cb9b5eca62d4d18"})]
    assert [case["id"] for case in cases] == ["0", "1", "2"]
    assert [case["answer_idx"] for case in cases] == [row["answer_idx"] for row in rows]

    rows[1]["answer_idx"] = "Z"
    with pytest.raises(DataError) as err:
        load_cases("medqa")
    assert_one_line_error(err, "hub dataset GBaker/MedQA-USMLE-4-options (split test) index 1: answer_idx 'Z'")


def test_hub_failure_is_one_line_naming_dataset_and_override(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'GBaker/MedQA-USMLE-4-options' on the Hub\n(offline mode is enabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as err:
        load_cases("medqa")
    assert_one_line_error(err, "could not load hub dataset GBaker/MedQA-USMLE-4-options", '"medqa_path"',
                          "MEDREASON_MEDQA_PATH")


# ---------------------------------------------------------------- the JAMA subset and answer key


def test_jama_subset_order_follows_the_url_list(synthetic_data):
    subset = json.loads(synthetic_data["paths"]["jama_subset"].read_text())
    scraped = [case["id"] for case in load_file("jama", synthetic_data["paths"]["jama"])]
    assert subset != [link for link in scraped if link in subset], "the synthetic list should reorder"
    cases = load_cases("jama", {"data_dir": str(synthetic_data["root"])})
    assert [case["id"] for case in cases] == subset


def test_jama_subset_and_key_overrides(synthetic_data, tmp_path, monkeypatch):
    links = synthetic_data["ids"]["jama_full"]
    subset = write_json(tmp_path / "subset.json", [links[4], links[0]])
    monkeypatch.setenv("MEDREASON_JAMA_PATH", str(synthetic_data["paths"]["jama"]))
    monkeypatch.setenv("MEDREASON_JAMA_SUBSET_PATH", str(subset))
    assert [case["id"] for case in load_cases("jama")] == [links[4], links[0]]
    other = write_json(tmp_path / "other.json", [links[1]])
    assert [case["id"] for case in load_cases("jama", {"jama_subset_path": str(other)})] == [links[1]]


def test_jama_subset_with_links_not_scraped(synthetic_data, tmp_path):
    links = synthetic_data["ids"]["jama_full"]
    absent = [jama_link(900), jama_link(901)]
    subset = write_json(tmp_path / "urls.json", [links[0], absent[0], links[1], absent[1]])
    metadata = {"data_dir": str(synthetic_data["root"]), "jama_subset_path": str(subset)}
    with pytest.raises(DataError) as err:
        load_cases("jama", metadata)
    assert_one_line_error(err, str(synthetic_data["paths"]["jama"]), "lacks 2 of the 4 cases", str(subset),
                          f"first missing: {absent[0]}", "jama_scraper.py", "jama_full")
    assert len(load_cases("jama_full", metadata)) == len(links)


@pytest.mark.parametrize("benchmark", ["jama", "jama_full"])
def test_answer_key_mismatch_names_the_link(benchmark, synthetic_data, tmp_path):
    subset = synthetic_data["ids"]["jama"]
    key = json.loads(synthetic_data["paths"]["jama_key"].read_text())
    wrong = next(entry for entry in key if entry["link"] == subset[-1])
    wrong["answer_idx"] = "ABCD".replace(wrong["answer_idx"], "")[0]
    key_path = write_json(tmp_path / "key.json", key)
    with pytest.raises(DataError) as err:
        load_cases(benchmark, {"data_dir": str(synthetic_data["root"]), "jama_key_path": str(key_path)})
    assert_one_line_error(err, str(key_path), wrong["link"], f"says {wrong['link']} is {wrong['answer_idx']!r}")


def test_answer_key_is_optional(synthetic_data):
    synthetic_data["paths"]["jama_key"].unlink()
    assert sources.resolve("jama_key", {"data_dir": str(synthetic_data["root"])}) is None
    cases = load_cases("jama", {"data_dir": str(synthetic_data["root"])})
    assert [case["id"] for case in cases] == synthetic_data["ids"]["jama"]


@pytest.mark.parametrize(
    "key, content, fragment",
    [
        ("jama_subset_path", '{"urls": []}', ": expected a non-empty JSON list, got dict"),
        ("jama_subset_path", '[\n  "https://a",\n  "https://a"\n]', " item 2: duplicate URL https://a"),
        ("jama_subset_path", '[\n  "https://a",\n  7\n]', " item 2: expected a non-empty URL string"),
        ("jama_subset_path", '[\n  "https://a",\n  "https://b"\n', " line 4: malformed JSON"),
        ("jama_key_path", '[{"id": 0, "link": "https://a"}]', " item 1: expected an object with text 'link' and 'answer_idx'"),
    ],
)
def test_bad_url_list_or_answer_key(key, content, fragment, synthetic_data, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_cases("jama", {"data_dir": str(synthetic_data["root"]), key: str(path)})
    assert_one_line_error(err, f"{path}{fragment}")


# ---------------------------------------------------------------- describe


def test_describe_medqa(synthetic_data):
    path = synthetic_data["paths"]["medqa"]
    text = describe("medqa", path, load_file("medqa", path))
    gold = Counter(synthetic_data["gold"]["medqa"])
    assert str(path) in text and "medqa" in text
    assert "cases:        6" in text and "4 per case" in text
    assert f"A {gold['A']} ({100 * gold['A'] / 6:.1f}%)" in text
    assert "step1 4 (66.7%), step2&3 2 (33.3%)" in text


def test_describe_lists_zero_counts_and_no_steps_for_csv(tmp_path):
    rows = medbullets_rows(5)
    for row in rows:
        row.update(answer_idx="A", answer=row["opa"])
    path = write_csv(tmp_path / "b.csv", rows, medbullets_columns(5))
    text = describe("medbullets", path, load_file("medbullets", path))
    assert "A 5 (100.0%), B 0 (0.0%), C 0 (0.0%), D 0 (0.0%), E 0 (0.0%)" in text
    assert "steps" not in text


# ---------------------------------------------------------------- the real files in ../shared/data


REAL_FILES = {
    "medqa": ("medqa/medqa_us_test_4options.jsonl", 1273, {"A": 353, "B": 309, "C": 346, "D": 265}),
    "medqa_op5": ("medqa/medqa_us_test_5options.jsonl", 1273, None),
    "medbullets": ("medbullets/medbullets_op5.csv", 308, {"A": 61, "B": 74, "C": 53, "D": 67, "E": 53}),
    "medbullets_op4": ("medbullets/medbullets_op4.csv", 308, {"A": 87, "B": 76, "C": 77, "D": 68}),
}


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_file(name, shared_data):
    relpath, count, gold = REAL_FILES[name]
    cases = load_file(name, shared_data / relpath)
    assert len(cases) == count
    for case in cases:
        assert_case_schema(case, N_OPTIONS[name])
    if gold:
        assert Counter(case["answer_idx"] for case in cases) == gold
    if name.startswith("medqa"):
        assert Counter(case["meta"]["step"] for case in cases) == {"step1": 679, "step2&3": 594}
    assert load_cases(name, {"data_dir": str(shared_data)}) == cases


def test_real_medbullets_files_hold_the_same_questions(shared_data):
    op5 = load_file("medbullets", shared_data / REAL_FILES["medbullets"][0])
    op4 = load_file("medbullets_op4", shared_data / REAL_FILES["medbullets_op4"][0])
    assert Counter(c["question"] for c in op5) == Counter(c["question"] for c in op4)


def test_real_jama_646_join(shared_data, tmp_path):
    """The study's subset: real URL list and answer key, joined with a SYNTHETIC scraped file built from the key."""
    key = json.loads((shared_data / "jama" / "jama_links.json").read_text(encoding="utf-8"))
    scraped = write_csv(tmp_path / "jama_raw.csv", jama_rows_for_key(key), JAMA_COLUMNS, lineterminator="\n")
    metadata = {"data_dir": str(shared_data), "jama_path": str(scraped)}
    assert sources.resolve("jama_subset", metadata).location == str(shared_data / "jama" / "jama_test_urls_646.json")
    assert sources.resolve("jama_key", metadata).location == str(shared_data / "jama" / "jama_links.json")
    cases = load_cases("jama", metadata)
    urls = json.loads((shared_data / "jama" / "jama_test_urls_646.json").read_text(encoding="utf-8"))
    assert [case["id"] for case in cases] == urls
    assert len(cases) == 646
    assert Counter(case["answer_idx"] for case in cases) == {"A": 80, "B": 192, "C": 246, "D": 128}
    by_link = {entry["link"]: entry for entry in key}
    assert all(case["answer"] == by_link[case["id"]]["answer"].strip() for case in cases)
    assert len(load_cases("jama_full", metadata)) == len(key) == 1524


def test_real_jama_join_reports_unscraped_cases(shared_data, tmp_path):
    key = json.loads((shared_data / "jama" / "jama_links.json").read_text(encoding="utf-8"))
    urls = json.loads((shared_data / "jama" / "jama_test_urls_646.json").read_text(encoding="utf-8"))
    kept = [entry for entry in key if entry["link"] not in set(urls[:3])]  # the scraper failed on three pages
    scraped = write_csv(tmp_path / "jama_raw.csv", jama_rows_for_key(kept), JAMA_COLUMNS, lineterminator="\n")
    with pytest.raises(DataError) as err:
        load_cases("jama", {"data_dir": str(shared_data), "jama_path": str(scraped)})
    assert_one_line_error(err, "lacks 3 of the 646 cases", f"first missing: {urls[0]}")


def test_loaders_module_is_import_light():
    """cli.py and the .pth hook import loaders: it must not pull in datasets (slow) at import time."""
    import subprocess
    import sys

    code = "import sys, lm_eval_medreason.data.loaders; print('datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert loaders.DataError is sources.DataError and issubclass(DataError, ValueError)
