"""MedMCQA, added as one registry row and one loader: the upstream rows (dev.json of the release, cop 1-4;
the hub dataset, cop 0-3) become cases, a bad row is one line naming the file and row, the file comes from
the same settings as every benchmark's, and its tasks exist under names lm-eval's own cannot take."""

import pytest

from lm_eval_medreason.cli import main
from lm_eval_medreason.data import sources
from lm_eval_medreason.data.loaders import cases_sha256, load_cases, load_cases_with_provenance, load_file
from lm_eval_medreason.errors import DataError
from lm_eval_medreason.evaluation.tasks import expected_files
from lm_eval_medreason.resources import tasks_dir
from tests.support.synthetic import medmcqa_rows, write_jsonl

pytestmark = pytest.mark.usefixtures("clean_env")

NAME = "medreason_medmcqa"
REVISION = "91c6572c454088bf71b679ad90aa8dffcd0d5868"
STRATEGIES = ("vanilla", "cot", "longstep", "longmonolog")


def one_line(err: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_dev_json_rows_become_cases(tmp_path):
    rows = medmcqa_rows(8)
    path = write_jsonl(tmp_path / "dev.json", rows)
    cases = load_file(NAME, path)
    assert [c["id"] for c in cases] == [row["id"] for row in rows]
    assert [c["answer_idx"] for c in cases] == ["ABCD"[row["cop"] - 1] for row in rows]  # dev.json: cop 1-4
    assert {c["answer_idx"] for c in cases} == set("ABCD")
    for case, row in zip(cases, rows):
        assert case["options"] == {"A": row["opa"], "B": row["opb"], "C": row["opc"], "D": row["opd"]}
        assert case["answer"] == case["options"][case["answer_idx"]]
        assert case["question"] == row["question"]
        assert case["meta"] == {"subject": row["subject_name"], "topic": row["topic_name"] or "",
                                "choice_type": row["choice_type"]}


def test_one_row_by_hand(tmp_path):
    row = {"id": "e9ad821a-c438-4965-9f77-760819dfa155", "question": "Chronic urethral obstruction due to benign "
           "prismatic hyperplasia can lead to the following change in kidney parenchyma", "opa": "Hyperplasia",
           "opb": "Hyperophy", "opc": "Atrophy", "opd": "Dyplasia", "cop": 3, "choice_type": "single",
           "exp": "Chronic urethral obstruction ...", "subject_name": "Anatomy", "topic_name": "Urinary tract"}
    (case,) = load_file(NAME, write_jsonl(tmp_path / "dev.json", [row]))
    assert (case["answer_idx"], case["answer"]) == ("C", "Atrophy")


def test_hub_rows_count_cop_from_zero_at_the_pinned_revision(monkeypatch):
    import datasets

    calls = []
    rows = medmcqa_rows(6, first=0)

    def fake_load_dataset(name, split=None, **kwargs):
        calls.append((name, split, kwargs))
        return rows

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    cases, record = load_cases_with_provenance(NAME, {"pretrained": "tiny"})
    assert calls == [("openlifescienceai/medmcqa", "validation", {"revision": REVISION})]
    assert [c["answer_idx"] for c in cases] == ["ABCD"[row["cop"]] for row in rows]  # hub: cop 0-3
    assert record["files"]["medmcqa"] == {"file": "medmcqa", "kind": "hub", "location": "openlifescienceai/medmcqa",
                                          "setting": "default", "dataset": "openlifescienceai/medmcqa",
                                          "split": "validation", "revision": REVISION}
    rows[1]["cop"] = 4
    with pytest.raises(DataError) as err:
        load_cases(NAME)
    one_line(err, "hub dataset openlifescienceai/medmcqa (split validation) index 1: cop 4 is not an option number 0-3")


def test_the_same_questions_from_the_hub_or_dev_json_are_the_same_cases(monkeypatch, tmp_path):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: medmcqa_rows(5, first=0))
    from_hub = load_cases(NAME)
    from_file = load_cases(NAME, {"medmcqa_path": str(write_jsonl(tmp_path / "dev.json", medmcqa_rows(5)))})
    assert from_file == from_hub and cases_sha256(from_file) == cases_sha256(from_hub)


BAD_ROWS = [
    ("cop_zero", {"cop": 0}, "cop 0 is not an option number 1-4 (dev.json of the release numbers the options 1-4"),
    ("cop_five", {"cop": 5}, "cop 5 is not an option number 1-4"),
    ("cop_text", {"cop": "2"}, "cop '2' is not an option number 1-4"),
    ("cop_bool", {"cop": True}, "cop True is not an option number 1-4"),
    ("no_cop", {"cop": None}, "missing key(s) cop (the release's test.json has no answers; evaluate dev.json)"),
    ("no_opd", {"opd": None}, "missing key(s) opd"),
    ("empty_option", {"opc": "  "}, "option C is empty"),
    ("empty_id", {"id": ""}, "id is empty"),
    ("numeric_question", {"question": 12}, "question must be text, got int"),
    ("empty_question", {"question": ""}, "question is empty"),
]


@pytest.mark.parametrize("change, fragment", [(c, f) for _, c, f in BAD_ROWS], ids=[i for i, _, _ in BAD_ROWS])
def test_a_bad_row_is_one_line_naming_file_and_row(tmp_path, change, fragment):
    rows = medmcqa_rows(3)
    rows[1].update(change)
    rows[1] = {k: v for k, v in rows[1].items() if v is not None}
    path = write_jsonl(tmp_path / "dev.json", rows)
    with pytest.raises(DataError) as err:
        load_file(NAME, path)
    one_line(err, f"{path} line 2: ", fragment)


def test_duplicate_ids_and_broken_lines_name_the_row(tmp_path):
    rows = medmcqa_rows(3)
    rows[2]["id"] = rows[0]["id"]
    path = write_jsonl(tmp_path / "dev.json", rows)
    with pytest.raises(DataError) as err:
        load_file(NAME, path)
    one_line(err, f"{path} line 3: duplicate id {rows[0]['id']!r} (first at line 1)")
    path.write_text(path.read_text().replace("}\n", "\n", 1))
    with pytest.raises(DataError) as err:
        load_file(NAME, path)
    one_line(err, f"{path} line 1: malformed JSON")


def test_data_validate_names_the_row_and_exits_1(tmp_path, capsys):
    rows = medmcqa_rows(4)
    path = write_jsonl(tmp_path / "dev.json", rows)
    assert main(["data", "validate", "--benchmark", NAME, str(path)]) == 0
    out = capsys.readouterr().out
    assert "cases:        4" in out and "gold letters: A 1 (25.0%), B 1 (25.0%), C 1 (25.0%), D 1 (25.0%)" in out
    rows[3]["cop"] = 0
    write_jsonl(path, rows)
    assert main(["data", "validate", "--benchmark", NAME, str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path} line 4: cop 0" in err[0]


def test_the_local_file_comes_from_the_same_settings_as_every_benchmark(tmp_path, monkeypatch):
    """--metadata medmcqa_path > --metadata data_dir > MEDREASON_MEDMCQA_PATH > MEDREASON_DATA_DIR > the hub."""
    own = write_jsonl(tmp_path / "own.json", medmcqa_rows(2))
    data_dir = tmp_path / "data"
    in_dir = write_jsonl(data_dir / "medmcqa" / "dev.json", medmcqa_rows(3))
    assert (sources.resolve("medmcqa").kind, sources.resolve("medmcqa").location) == ("hub", "openlifescienceai/medmcqa")
    monkeypatch.setenv("MEDREASON_DATA_DIR", str(data_dir))
    assert sources.resolve("medmcqa").location == str(in_dir)
    monkeypatch.setenv("MEDREASON_MEDMCQA_PATH", str(own))
    assert sources.resolve("medmcqa").location == str(own)
    assert sources.resolve("medmcqa", {"data_dir": str(data_dir)}).location == str(in_dir)
    both = {"data_dir": str(data_dir), "medmcqa_path": str(own)}
    assert (sources.resolve("medmcqa", both).location, sources.resolve("medmcqa", both).setting) == (
        str(own), "--metadata medmcqa_path")
    assert len(load_cases(NAME, {"data_dir": str(data_dir)})) == 3


def test_the_tasks_exist_and_lm_eval_builds_one_on_the_local_file(tmp_path):
    from lm_eval.tasks import TaskManager

    rows = medmcqa_rows(4)
    path = write_jsonl(tmp_path / "dev.json", rows)
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata={"medmcqa_path": str(path)})
    names = {f"{NAME}_{s}{m}" for s in STRATEGIES for m in ("", "_maj", "_adaptive", "_budget")}
    assert names <= set(manager.all_subtasks)
    task = manager.load(f"{NAME}_longstep")["tasks"][f"{NAME}_longstep"]
    docs = list(task.eval_docs)
    assert [d["id"] for d in docs] == [row["id"] for row in rows]
    assert [task.doc_to_target(d) for d in docs] == ["ABCD"[row["cop"] - 1] for row in rows]
    prompt = task.doc_to_text(docs[0])
    assert rows[0]["question"] in prompt and f"D. {rows[0]['opd']}" in prompt
    assert task.config.metadata["provenance"]["files"]["medmcqa"]["location"] == str(path.resolve())


def test_not_in_the_study_groups():
    groups = [text for relative, text in expected_files().items() if relative.startswith("_medreason_") and relative.endswith(".yaml")]
    assert len(groups) == 13 and not [text for text in groups if "medmcqa" in text]


def test_task_names_cannot_collide_with_lm_evals_own():
    """lm-eval's own tasks (its tasks folder, without this package): `medmcqa` is there, and no name in
    the medreason_ namespace, where every MedMCQA task of this package lives."""
    from pathlib import Path

    import lm_eval.tasks
    from lm_eval.tasks._index import TaskIndex

    theirs = set(TaskIndex().build([Path(lm_eval.tasks.__file__).parent]))
    assert "medmcqa" in theirs
    assert not [name for name in theirs if name.startswith("medreason_")]
    ours = [p.stem for p in (tasks_dir() / "medmcqa").glob("*.yaml")]
    assert len(ours) == 16 and all(name.startswith(f"{NAME}_") for name in ours)


def test_task_readme_says_source_size_splits_and_citation():
    text = (tasks_dir() / "medmcqa" / "README.md").read_text(encoding="utf-8")
    for needle in ("openlifescienceai/medmcqa", REVISION, "4,183", "validation", "dev.json", "Pal, Ankit",
                   "Conference on Health, Inference, and Learning", "2022", "medmcqa_path", "MEDREASON_MEDMCQA_PATH"):
        assert needle in text, needle
    assert f"`{NAME}_{{strategy}}`" in text
