"""Task YAML from data: written with a yaml.SafeDumper from the registry's dictionaries, leaf files as small
as lm-eval's own, read by lm-eval's own loader into exactly the configs the tasks had before."""

import re

import pytest
import yaml

from lm_eval_medreason.evaluation import freeform, hooks
from lm_eval_medreason.evaluation.tasks import README_BEGIN, README_END, TaskDumper, TaskLoader, expected_files
from lm_eval_medreason.resources import tasks_dir

BENCHMARKS = ("jama", "jama_full", "medbullets", "medbullets_op4", "medqa", "medqa_op5", "medreason_medmcqa")
BUDGETS = {"vanilla": 256, "cot": 2048, "longstep": 4096, "longmonolog": 8192}
FREEFORM = ("jama", "jama_full", "medbullets", "medqa")
LEAF_KEYS = {"include", "task", "custom_dataset"}


def lm_eval_config(relative: str) -> dict:
    """A task file as lm-eval reads it: includes merged, ``!function`` imported."""
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(tasks_dir() / relative, resolve_func=True)


def metrics(*names_and_direction) -> list[dict]:
    return [{"metric": m, "aggregation": "mean", "higher_is_better": hib} for m, hib in names_and_direction]


SCORE = (("acc", True), ("output_tokens", False), ("no_answer", False))
VOTE = tuple((f"{m}@{k}", True) for m in ("maj", "pass") for k in (1, 2, 4, 8, 16, 32)) + SCORE[1:]


def folder(benchmark: str) -> str:
    return "medmcqa" if benchmark == "medreason_medmcqa" else benchmark.split("_")[0]


@pytest.mark.parametrize("strategy", sorted(BUDGETS))
@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_lm_eval_reads_each_task_as_it_was(benchmark, strategy):
    """The resolved config of every multiple-choice task and its vote task, written out by hand (the
    configs as they were before the YAML came from the registry; MedMCQA's are the same with its hook)."""
    task = {
        "output_type": "generate_until", "test_split": "test", "doc_to_target": "answer_idx",
        "filter_list": [{"name": "final-answer", "filter": [{"function": hooks.ScoreResponses},
                                                             {"function": "take_first"}]}],
        "process_results": hooks.process_results,
        "metric_list": metrics(*SCORE),
        "metadata": {"version": 1.0, "provenance": {}},
        "doc_to_text": getattr(hooks, f"prompt_{strategy}"),
        "generation_kwargs": {"until": [], "max_gen_toks": BUDGETS[strategy], "do_sample": False, "temperature": 0.0},
        "task": f"{benchmark}_{strategy}",
        "custom_dataset": getattr(hooks, f"{benchmark}_dataset"),
    }
    assert lm_eval_config(f"{folder(benchmark)}/{benchmark}_{strategy}.yaml") == task
    vote = {**task, "task": f"{benchmark}_{strategy}_maj", "repeats": 32,
            "filter_list": [{"name": "final-answer", "filter": [{"function": hooks.ScoreResponses}]}],
            "process_results": hooks.process_results_maj, "metric_list": metrics(*VOTE),
            "generation_kwargs": {"until": [], "max_gen_toks": BUDGETS[strategy], "do_sample": True,
                                  "temperature": 0.7, "top_p": 0.95}}
    assert lm_eval_config(f"{folder(benchmark)}/{benchmark}_{strategy}_maj.yaml") == vote
    adaptive = {**vote, "task": f"{benchmark}_{strategy}_adaptive", "process_results": hooks.process_results_adaptive,
                "metric_list": metrics(("acc", True), ("samples", False), ("output_tokens", False), ("no_answer", False)),
                "metadata": {"version": 1.0, "provenance": {}, "scaling": "adaptive", "samples": 32}}
    assert lm_eval_config(f"{folder(benchmark)}/{benchmark}_{strategy}_adaptive.yaml") == adaptive
    budgets = [b for b in (256, 512, 1024, 2048, 4096, 8192) if b <= BUDGETS[strategy]]
    curve = {**task, "task": f"{benchmark}_{strategy}_budget", "process_results": hooks.process_results_budget,
             "filter_list": [{"name": "final-answer", "filter": [{"function": hooks.ScoreBudget},
                                                                  {"function": "take_first"}]}],
             "metric_list": metrics(*SCORE, *[(f"{m}@{b}", m == "acc") for b in budgets for m in ("acc", "tokens")]),
             "metadata": {"version": 1.0, "provenance": {}, "scaling": "budget", "budgets": budgets}}
    assert lm_eval_config(f"{folder(benchmark)}/{benchmark}_{strategy}_budget.yaml") == curve


@pytest.mark.parametrize("benchmark", FREEFORM)
def test_lm_eval_reads_each_freeform_task_as_it_was(benchmark):
    assert lm_eval_config(f"{folder(benchmark)}/{benchmark}_freeform.yaml") == {
        "output_type": "generate_until", "test_split": "test", "doc_to_target": "answer",
        "doc_to_text": freeform.prompt_freeform,
        "generation_kwargs": {"until": [], "max_gen_toks": 4096, "do_sample": False, "temperature": 0.0},
        "filter_list": [{"name": "graded", "filter": [{"function": freeform.GradeFreeform},
                                                       {"function": "take_first"}]}],
        "process_results": freeform.process_results,
        "metric_list": metrics(*SCORE, ("judge_error", False), ("judged", True), ("matcher_agreement", True)),
        "metadata": {"version": 1.0, "provenance": {}},
        "task": f"{benchmark}_freeform",
        "custom_dataset": getattr(freeform, f"{benchmark}_dataset"),
    }


def test_lm_eval_task_manager_indexes_every_task_and_group():
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    tasks = {f"{b}_{s}{m}" for b in BENCHMARKS for s in BUDGETS for m in ("", "_maj", "_adaptive", "_budget")}
    assert set(manager.all_subtasks) == tasks | {f"{b}_freeform" for b in FREEFORM}
    assert set(manager.all_groups) == {f"medreason_{s}{m}" for s in BUDGETS for m in ("", "_maj", "_adaptive")} | {
        "medreason_freeform"}


def test_leaf_files_hold_only_include_task_and_dataset():
    """As small as lm-eval's own: nothing a leaf sets is set by one of its bases."""
    leaves = sorted(tasks_dir().glob("*/*.yaml"))
    assert len(leaves) == 4 * len(BENCHMARKS) * len(BUDGETS) + len(FREEFORM)
    for path in leaves:
        leaf = yaml.load(path.read_text(encoding="utf-8"), Loader=TaskLoader)
        assert set(leaf) == LEAF_KEYS, path
        includes = leaf["include"] if isinstance(leaf["include"], list) else [leaf["include"]]
        for base in includes:
            from lm_eval.tasks._yaml_loader import load_yaml

            inherited = load_yaml(path.parent / base, resolve_func=False)
            assert not (set(leaf) - {"include"}) & set(inherited), (path, base)


def test_every_file_is_safe_yaml_but_for_the_function_tag():
    """Groups load with yaml.safe_load; the rest with a SafeLoader that knows only ``!function`` besides."""
    assert issubclass(TaskLoader, yaml.SafeLoader) and issubclass(TaskDumper, yaml.SafeDumper)
    for relative, text in expected_files().items():
        if relative.endswith(".md"):
            continue
        if "!function" not in text:
            assert isinstance(yaml.safe_load(text), dict), relative
        else:
            assert re.findall(r"!function (\S+)\n", text), relative
            assert isinstance(yaml.load(text, Loader=TaskLoader), dict), relative
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.load("x: !!python/object/apply:os.getcwd []\n", Loader=TaskLoader)


def test_readme_task_tables_come_from_the_registry():
    readme = (tasks_dir().parent / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index(README_BEGIN):readme.index(README_END)]
    assert "| `medreason_medmcqa` | 4,183 (validation) | 4 | hub `openlifescienceai/medmcqa`, split `validation` | no | no |" in block
    assert "| `medqa` | 1,273 (US test) | 4 | hub `GBaker/MedQA-USMLE-4-options`, split `test` | yes | yes |" in block
    assert "| `longstep` | `prompts/eval_longstep.j2` | 4,096 |" in block
    assert ("So 28 tasks (`{benchmark}_{strategy}`), 28 majority-vote tasks (`..._maj`), 28 adaptive-vote tasks "
            "(`..._adaptive`), 28 budget-curve tasks (`..._budget`), 4 free-form tasks") in block
