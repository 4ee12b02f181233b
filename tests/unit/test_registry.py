"""One table per concept: every benchmark and strategy is a row of data/registry.py, and every list the
package keeps of them (loaders, task YAML, groups, report, contamination guard, distillation budgets, CLI)
is derived from it, so that a new benchmark is one row."""

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_medreason.data import registry
from lm_eval_medreason.data.loaders import FORMATS
from lm_eval_medreason.resources import prompts_dir, tasks_dir

PACKAGE = Path(registry.__file__).resolve().parents[1]


def test_every_benchmark_row_is_complete():
    titles = [b.title for b in registry.BENCHMARKS.values()]
    assert len(set(titles)) == len(titles) and all(titles)
    for name, b in registry.BENCHMARKS.items():
        assert b.name == name and b.format in FORMATS
        assert (tasks_dir() / b.folder / "README.md").is_file(), f"{name}: its task folder needs a README"
        assert 2 <= b.options <= 5 and b.size > 0
        assert b.breakdown is None or b.breakdown in {key for key, _ in b.meta}, name
        assert all(registry.FILES[f.key] is f for f in b.files), name
        with pytest.raises(dataclasses.FrozenInstanceError):
            b.size = 1
    for name, s in registry.STRATEGIES.items():
        assert s.name == name and (prompts_dir() / s.prompt).is_file()
        assert s.distillable == (s.distill_max_tokens is not None)


def test_the_registry_holds_what_the_modules_held_before():
    """The values the package's own tables had before the registry (literal here), plus MedMCQA."""
    b = registry.BENCHMARKS
    assert [n for n in b if b[n].in_study] == ["jama", "medbullets", "medqa"]
    assert {n: b[n].options for n in b} == {"jama": 4, "jama_full": 4, "medbullets": 5, "medbullets_op4": 4,
                                            "medqa": 4, "medqa_op5": 5, "medreason_medmcqa": 4}
    assert {n: b[n].source.key for n in b} == {"jama": "jama", "jama_full": "jama", "medbullets": "medbullets",
                                               "medbullets_op4": "medbullets_op4", "medqa": "medqa",
                                               "medqa_op5": "medqa_op5", "medreason_medmcqa": "medmcqa"}
    assert b["jama"].subset.key == "jama_subset" and b["jama_full"].subset is None
    assert registry.TRAIN_SPLITS["jama_train"].exclude.key == "jama_subset"
    assert [n for n in b if b[n].freeform] == ["jama", "medbullets", "medqa", "jama_full"]
    assert {n: (s.max_gen_toks, s.multiple_choice) for n, s in registry.STRATEGIES.items()} == {
        "vanilla": (256, True), "cot": (2048, True), "longstep": (4096, True), "longmonolog": (8192, True),
        "freeform": (4096, False)}


def test_every_view_is_derived_from_the_registry():
    from lm_eval_medreason import cli
    from lm_eval_medreason.distillation import pipeline, selection
    from lm_eval_medreason.evaluation import tasks
    from lm_eval_medreason.reporting import logs, report

    assert tasks.FOLDERS == {"jama": ("jama", "jama_full"), "medbullets": ("medbullets", "medbullets_op4"),
                             "medqa": ("medqa", "medqa_op5"), "medmcqa": ("medreason_medmcqa",)}
    assert tasks.GROUP_MEMBERS == logs.STUDY_BENCHMARKS == ("jama", "medbullets", "medqa")
    assert set(pipeline.EVAL_BENCHMARKS) == {"medqa", "medbullets", "jama"}
    assert tasks.FREEFORM_BENCHMARKS == {"jama": ("jama", "jama_full"), "medbullets": ("medbullets",),
                                         "medqa": ("medqa",)}
    assert {s: budget for s, (budget, _) in tasks.STRATEGIES.items()} == {
        "vanilla": 256, "cot": 2048, "longstep": 4096, "longmonolog": 8192}
    assert logs.STRATEGIES == ("vanilla", "cot", "longstep", "longmonolog", "freeform")
    assert logs.BENCHMARKS == ("jama", "medbullets", "medqa", "jama_full", "medbullets_op4", "medqa_op5",
                               "medreason_medmcqa")
    assert logs.TITLES == {"jama": "JAMA", "medbullets": "Medbullets", "medqa": "MedQA", "jama_full": "JAMA (all)",
                           "medbullets_op4": "Medbullets (4 opt.)", "medqa_op5": "MedQA (5 opt.)",
                           "medreason_medmcqa": "MedMCQA"}
    assert report.BREAKDOWN_KEYS == {"medqa": "step", "medqa_op5": "step", "jama": "field", "jama_full": "field",
                                     "medreason_medmcqa": "subject"}
    assert pipeline.DEFAULT_MAX_TOKENS == {"longstep": 4096, "longmonolog": 8192, "cot": 2048}
    assert selection.DEFAULT_MIN_TOKENS == {"longstep": 300, "longmonolog": 500, "cot": 0}
    assert set(pipeline.STYLES) == set(registry.distillable_strategies())  # the teacher prompts of each
    assert cli._benchmark_names() == sorted(logs.BENCHMARKS)


def test_no_module_keeps_its_own_list_of_benchmark_names():
    """Outside the registry, no Python string in the package is an evaluated benchmark's name."""
    names = set(registry.BENCHMARKS)
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(registry.__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.value!r}")
    assert not found, found


NEW_ROW = """
import json, sys
from lm_eval_medreason.data import registry as r

toy = r.DataFile("toy", "toy/toy.jsonl", "a toy benchmark (JSONL)")
r.BENCHMARKS["toy"] = r.Benchmark("toy", "Toy questions", "medqa_jsonl", toy, (("step", "meta_info"),), title="Toy",
                                  folder="toy", options=4, size=2, breakdown="step")
r.FILES[toy.key] = toy  # what registry.py derives from the rows when it is imported

from lm_eval_medreason import cli
from lm_eval_medreason.evaluation import hooks, tasks
from lm_eval_medreason.reporting import logs, report

dataset = hooks.toy_dataset(toy_path=sys.argv[1])["test"]
print(json.dumps({
    "files": sorted(p for p in tasks.expected_files() if p.startswith("toy/")),
    "task": tasks.expected_files()["toy/toy_cot_maj.yaml"],
    "table": [line for line in tasks.task_tables().splitlines() if line.startswith("| `toy`")],
    "parsed": logs.parse_task("toy_longstep_maj"),
    "title": logs.TITLES["toy"],
    "breakdown": report.BREAKDOWN_KEYS["toy"],
    "choices": cli._benchmark_names(),
    "ids": list(dataset["id"]),
    "prompt": hooks.prompt_vanilla(dataset[0]),
}))
"""


def test_a_new_benchmark_is_one_registry_row(tmp_path):
    """A row added to the registry (and nothing else) gets its task files, dataset hook, README row, report
    title and breakdown, and CLI choice; its cases load through the generated hook."""
    rows = [{"realidx": 7, "question": "Which drug?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
             "answer_idx": "C", "meta_info": "step1"},
            {"realidx": 8, "question": "Which test?", "options": {"A": "w", "B": "x", "C": "y", "D": "z"},
             "answer_idx": "A", "meta_info": "step2&3"}]
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", NEW_ROW, str(path)], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen["files"] == sorted(f"toy/toy_{s}{m}.yaml" for s in ("vanilla", "cot", "longstep", "longmonolog")
                                   for m in ("", "_maj", "_adaptive", "_budget"))
    assert "task: toy_cot_maj\n" in seen["task"] and "hooks.toy_dataset\n" in seen["task"]
    assert seen["table"] == ["| `toy` | 2 | 4 | local file only: `toy.jsonl` | no | no |"]
    assert seen["parsed"] == ["toy", "longstep", True]
    assert (seen["title"], seen["breakdown"]) == ("Toy", "step")
    assert "toy" in seen["choices"]
    assert seen["ids"] == ["7", "8"]
    assert "Which drug?" in seen["prompt"] and "C. c" in seen["prompt"]
