"""Task YAML is generated from the registry; the files in tasks/ and the README's task tables must be what the
generator writes."""

import yaml

from lm_eval_medreason.evaluation.tasks import FOLDERS, STRATEGIES, expected_files, readme_path, with_tables
from lm_eval_medreason.resources import prompts_dir, tasks_dir


def test_task_files_are_up_to_date():
    stale = [path for path, text in expected_files().items() if (tasks_dir() / path).read_text(encoding="utf-8") != text]
    assert not stale, f"run `python -m lm_eval_medreason.evaluation.tasks` to regenerate {stale}"
    readme = readme_path().read_text(encoding="utf-8")
    assert with_tables(readme) == readme, "run `python -m lm_eval_medreason.evaluation.tasks` to regenerate README.md"


def test_no_unknown_task_files():
    generated = set(expected_files())
    on_disk = {str(p.relative_to(tasks_dir())) for p in tasks_dir().rglob("*") if p.is_file() and p.suffix != ".md"}
    assert on_disk <= generated, f"task files not written by the generator: {sorted(on_disk - generated)}"


def test_every_benchmark_and_strategy_has_a_task_with_a_budget_and_a_prompt():
    from lm_eval.tasks._yaml_loader import load_yaml

    for folder, benchmarks in FOLDERS.items():
        for benchmark in benchmarks:
            for strategy, (budget, _) in STRATEGIES.items():
                config = load_yaml(tasks_dir() / folder / f"{benchmark}_{strategy}.yaml", resolve_func=False)
                assert config["task"] == f"{benchmark}_{strategy}"
                assert config["generation_kwargs"]["max_gen_toks"] == budget
                assert config["generation_kwargs"]["until"] == []
                assert config["doc_to_text"].endswith(f"evaluation.hooks.prompt_{strategy}")
                assert config["custom_dataset"].endswith(f"evaluation.hooks.{benchmark}_dataset")
                assert (prompts_dir() / f"eval_{strategy}.j2").is_file()


def test_groups_weight_by_size():
    for strategy in STRATEGIES:
        group = yaml.safe_load((tasks_dir() / f"_medreason_{strategy}.yaml").read_text())
        assert group["task"] == [f"{b}_{strategy}" for b in ("jama", "medbullets", "medqa")]
        assert all(m["weight_by_size"] for m in group["aggregate_metric_list"])
