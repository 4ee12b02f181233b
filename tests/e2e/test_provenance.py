"""Every run records where its data came from: defaults pinned to fixed commits and a fixed hub revision,
each file's sha256 beside the pinned upstream file's (a difference is reported, never refused), a
fingerprint of the loaded cases, all in the results file lm-eval writes (configs.<task>.metadata.provenance)."""

import dataclasses
import hashlib
import json
import logging
import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lm_eval_medreason.data import sources
from lm_eval_medreason.data.loaders import load_cases, load_cases_with_provenance
from tests.support.fake_openai import fake_chat_server
from tests.support.lm_eval_run import read_results, run_lm_eval
from tests.support.synthetic import medbullets_columns, medbullets_rows, medqa_rows, write_csv, write_jsonl

pytestmark = pytest.mark.usefixtures("clean_env")
SHA1_HEX = re.compile(r"[0-9a-f]{40}")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def jsonl_sha256(cases: list[dict]) -> str:
    """The fingerprint as documented: sha256 of the cases' JSON Lines, keys sorted, no spaces, UTF-8."""
    text = "\n".join(json.dumps(c, sort_keys=True, ensure_ascii=False, separators=(",", ":")) for c in cases)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def warnings_about(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


# ---------------------------------------------------------------- pins


def test_every_default_download_is_pinned_to_a_commit():
    downloads = {key: file for key, file in sources.FILES.items() if file.url or file.hub}
    assert sorted(downloads) == ["jama_subset", "medbullets", "medbullets_op4", "medmcqa", "medqa", "medqa_train"]
    for key, file in downloads.items():
        assert SHA1_HEX.fullmatch(file.revision or ""), key
        if file.url:
            assert f"/{file.revision}/" in file.url and "/main/" not in file.url, file.url


def test_pinned_sha256s_are_those_of_the_upstream_files(shared_data):
    """shared/data holds the upstream files (ChallengeClinicalQA, Ophiuchus, medagents-benchmark, MedReason)."""
    pinned = {key: file for key, file in sources.FILES.items() if file.sha256}
    assert sorted(pinned) == ["jama_key", "jama_subset", "medbullets", "medbullets_op4", "medqa", "medqa_op5"]
    for key, file in pinned.items():
        assert sha256_of(shared_data / file.relpath) == file.sha256, key


# ---------------------------------------------------------------- what a load records


def test_real_files_are_recorded_as_the_pinned_ones(shared_data, caplog):
    with caplog.at_level(logging.WARNING):
        cases, record = load_cases_with_provenance("medbullets_op4", {"data_dir": str(shared_data)})
    path = shared_data / "medbullets" / "medbullets_op4.csv"
    assert record == {
        "benchmark": "medbullets_op4",
        "files": {"medbullets_op4": {
            "file": "medbullets_op4", "kind": "path", "location": str(path.resolve()), "setting": "--metadata data_dir",
            "sha256": sha256_of(path), "pinned_sha256": sha256_of(path), "matches_pinned": True}},
        "cases": 308,
        "cases_sha256": jsonl_sha256(cases),
    }
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_local_file_that_differs_is_reported_once_and_recorded_not_refused(synthetic_data, caplog):
    path = synthetic_data["paths"]["medbullets"]
    with caplog.at_level(logging.WARNING):
        cases, record = load_cases_with_provenance("medbullets", {"data_dir": str(synthetic_data["root"])})
        load_cases_with_provenance("medbullets", {"data_dir": str(synthetic_data["root"])})  # a second task
    assert [case["id"] for case in cases] == synthetic_data["ids"]["medbullets"]
    entry = record["files"]["medbullets"]
    assert entry["sha256"] == sha256_of(path) and entry["matches_pinned"] is False
    assert entry["pinned_sha256"] == "7da4b1397418b4bd15074066ea6a377ac44a599794a959cd8ebc76937ea597e6"
    [warning] = warnings_about(caplog, str(path))
    assert "differs from the pinned upstream medbullets_op5.csv" in warning and sha256_of(path) in warning


def test_jama_records_the_scrape_the_subset_and_the_key(synthetic_data):
    _, record = load_cases_with_provenance("jama", {"data_dir": str(synthetic_data["root"])})
    files = record["files"]
    assert sorted(files) == ["jama", "jama_key", "jama_subset"]
    for key in files:
        assert files[key]["sha256"] == sha256_of(synthetic_data["paths"][key])
    assert "pinned_sha256" not in files["jama"]  # scraped by each user: nothing to compare with
    assert record["cases"] == len(synthetic_data["ids"]["jama"])


def test_cases_sha256_fingerprints_the_questions_not_the_file_bytes(tmp_path):
    rows = medqa_rows(4)
    plain = write_jsonl(tmp_path / "a.jsonl", rows)
    reformatted = tmp_path / "b.jsonl"  # same rows: keys reordered, spaces, a blank line, CRLF
    reformatted.write_text("\r\n".join(json.dumps(dict(reversed(list(r.items()))), indent=None) for r in rows) + "\r\n\r\n")
    _, a = load_cases_with_provenance("medqa", {"medqa_path": str(plain)})
    _, b = load_cases_with_provenance("medqa", {"medqa_path": str(reformatted)})
    assert a["files"]["medqa"]["sha256"] != b["files"]["medqa"]["sha256"]
    assert a["cases_sha256"] == b["cases_sha256"] == jsonl_sha256(load_cases("medqa", {"medqa_path": str(plain)}))
    rows[2]["question"] += " (edited)"
    _, c = load_cases_with_provenance("medqa", {"medqa_path": str(write_jsonl(tmp_path / "c.jsonl", rows))})
    assert c["cases_sha256"] != a["cases_sha256"]


def test_the_hub_default_records_dataset_split_and_revision(monkeypatch):
    import datasets

    rows = medqa_rows(3, realidx=False)
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split=None, revision=None: rows)
    cases, record = load_cases_with_provenance("medqa")
    assert record["files"] == {"medqa": {
        "file": "medqa", "kind": "hub", "location": "GBaker/MedQA-USMLE-4-options", "setting": "default",
        "dataset": "GBaker/MedQA-USMLE-4-options", "split": "test", "revision": "0fb93dd23a7339b6dcd27e241cb9b5eca62d4d18"}}
    assert record["cases_sha256"] == jsonl_sha256(cases)


def test_a_url_default_records_url_commit_and_sha256(monkeypatch, tmp_path):
    """A real download (datasets' DownloadManager) from a local HTTP server standing in for GitHub."""
    import datasets

    served = tmp_path / "served" / "0123456789abcdef0123456789abcdef01234567" / "medbullets"
    path = write_csv(served / "medbullets_op5.csv", medbullets_rows(3), medbullets_columns(5))
    monkeypatch.setattr(datasets.config, "DOWNLOADED_DATASETS_PATH", tmp_path / "downloads")
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "served"))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        commit = "0123456789abcdef0123456789abcdef01234567"
        url = f"http://127.0.0.1:{server.server_address[1]}/{commit}/medbullets/medbullets_op5.csv"
        pinned = dataclasses.replace(sources.FILES["medbullets"], url=url, revision=commit, sha256=sha256_of(path))
        monkeypatch.setitem(sources.FILES, "medbullets", pinned)
        _, record = load_cases_with_provenance("medbullets")
    finally:
        server.shutdown()
        server.server_close()
    assert record["files"]["medbullets"] == {
        "file": "medbullets", "kind": "url", "location": url, "setting": "default", "commit": commit,
        "sha256": sha256_of(path), "pinned_sha256": sha256_of(path), "matches_pinned": True}


# ---------------------------------------------------------------- in the results file, through lm_eval


@pytest.mark.slow
def test_lm_eval_results_record_each_tasks_provenance(synthetic_data, tmp_path):
    """Three tasks, three hooks (multiple choice, majority voting, free-form): each task's config in
    results_*.json carries its own record; each differing file is reported in one warning line."""
    data = synthetic_data["root"]
    tasks = ("medqa_vanilla", "jama_cot_maj", "medbullets_freeform")
    with fake_chat_server(lambda prompt: "Final answer: (A)") as (url, _):
        run = run_lm_eval(
            ["--model", "local-chat-completions", "--apply_chat_template",
             "--model_args", f"model=scripted,base_url={url},num_concurrent=1,max_retries=1,tokenizer_backend=none",
             "--tasks", ",".join(tasks), "--limit", "1", "--gen_kwargs", "max_gen_toks=8",
             "--metadata", json.dumps({"data_dir": str(data)})],
            tmp_path / "out",
        )
    results, _ = read_results(tmp_path / "out")
    for task, benchmark, files in (("medqa_vanilla", "medqa", ["medqa"]),
                                   ("jama_cot_maj", "jama", ["jama", "jama_key", "jama_subset"]),
                                   ("medbullets_freeform", "medbullets", ["medbullets"])):
        record = results["configs"][task]["metadata"]["provenance"]
        assert record["benchmark"] == benchmark and sorted(record["files"]) == files
        for key in files:
            entry = record["files"][key]
            path = synthetic_data["paths"][key]
            assert (entry["kind"], entry["location"], entry["setting"]) == ("path", str(path.resolve()), "--metadata data_dir")
            assert entry["sha256"] == sha256_of(path)
        cases = load_cases(benchmark, {"data_dir": str(data)})
        assert record["cases"] == len(cases) and record["cases_sha256"] == jsonl_sha256(cases)
    for key in ("medqa", "jama_key", "jama_subset", "medbullets"):  # synthetic: none is the upstream file
        lines = [line for line in run.stderr.splitlines() if str(synthetic_data["paths"][key]) in line]
        assert len(lines) == 1 and "differs from the pinned upstream" in lines[0], lines


def test_provenance_is_not_a_metadata_setting(synthetic_data):
    from lm_eval_medreason.evaluation.hooks import medbullets_dataset, medqa_dataset

    shared = {}  # what a user's --metadata '{"provenance": {}}' becomes: one object for every task
    medqa_dataset(data_dir=str(synthetic_data["root"]), provenance=shared)
    assert shared["benchmark"] == "medqa"
    with pytest.raises(ValueError, match="'provenance' is not a --metadata setting"):
        medbullets_dataset(data_dir=str(synthetic_data["root"]), provenance=shared)
    with pytest.raises(ValueError, match="'provenance' is not a --metadata setting"):
        medqa_dataset(data_dir=str(synthetic_data["root"]), provenance={"benchmark": "medqa", "cases": 1})


def test_a_task_loaded_again_keeps_its_provenance(synthetic_data):
    """lm-eval's Task.download may build a task a second time: its own record is then filled again, unchanged."""
    from lm_eval_medreason.evaluation.hooks import medqa_dataset

    slot = {}
    medqa_dataset(data_dir=str(synthetic_data["root"]), provenance=slot)
    first = dict(slot)
    medqa_dataset(data_dir=str(synthetic_data["root"]), provenance=slot)
    assert slot == first and first["cases"] == 6
