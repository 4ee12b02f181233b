"""The wheel, installed non-editably into a fresh venv, ships its tasks, prompts and hook:
the plain `lm_eval` command sees the tasks and runs one (base model, no chat template)."""

import json
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from lm_eval_medreason.evaluation.tasks import STRATEGIES
from tests.support.lm_eval_run import read_results, run_lm_eval

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    """A new venv holding only our wheel; its dependencies are borrowed from this environment."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root), str(REPO)],
        check=True,
    )
    wheel = next(root.glob("lm_eval_medreason-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # Dependencies (lm-eval, torch, ...) come from the test environment: a plain path entry, so
    # none of its .pth files (our editable install among them) is processed in the new venv.
    borrowed = [p for p in [sysconfig.get_paths()["purelib"], *site.getsitepackages()] if p != purelib]
    (Path(purelib) / "zz_borrowed_dependencies.pth").write_text("\n".join(borrowed) + "\n")
    return {"python": python, "site": purelib, "cwd": root}


def test_wheel_ships_tasks_prompts_and_hook(fresh_venv):
    site_packages = Path(fresh_venv["site"])
    assert (site_packages / "lm_eval_medreason.pth").is_file()
    assert (site_packages / "lm_eval_medreason" / "tasks" / "jama" / "jama_longmonolog.yaml").is_file()
    assert (site_packages / "lm_eval_medreason" / "prompts" / "question.j2").is_file()
    page = site_packages / "lm_eval_medreason" / "reporting" / "page"
    assert all((page / name).is_file() for name in ("index.html.j2", "page.js", "page.css"))
    tasks_dir = subprocess.run(
        [str(fresh_venv["python"].parent / "medreason"), "tasks-dir"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert tasks_dir == str(site_packages / "lm_eval_medreason" / "tasks")
    training = site_packages / "lm_eval_medreason" / "training"
    assert (training / "accelerate" / "zero3.yaml").is_file() and (training / "recipes" / "_study.yaml").is_file()
    recipes = subprocess.run(
        [str(fresh_venv["python"].parent / "medreason"), "train", "--help"], check=True, capture_output=True, text=True
    ).stdout
    recipes = "".join(recipes.split())  # argparse wraps long words too
    assert "qwen2.5-72b-longmonolog" in recipes and str(training / "accelerate" / "zero3.yaml") in recipes


def test_plain_lm_eval_lists_every_task_and_group(fresh_venv):
    listing = subprocess.run(
        [str(fresh_venv["python"]), "-m", "lm_eval", "ls", "tasks"],
        check=True, capture_output=True, text=True, cwd=fresh_venv["cwd"],
    ).stdout
    rows = {cells[0].strip(): cells[1].strip() for line in listing.splitlines()
            if len(cells := line.strip("|").split("|")) > 1}
    names = [f"medreason_{s}" for s in STRATEGIES] + [
        f"{b}_{s}" for b in ("jama", "jama_full", "medbullets", "medbullets_op4", "medqa", "medqa_op5",
                             "medreason_medmcqa") for s in STRATEGIES
    ]
    for name in names:
        assert rows.get(name, "").startswith(fresh_venv["site"]), f"{name} not listed from the installed wheel"


def test_plain_lm_eval_runs_a_task_from_the_wheel(fresh_venv, tiny_model, synthetic_data, tmp_path):
    run_lm_eval(
        ["--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32", "--device", "cpu",
         "--tasks", "medqa_vanilla", "--limit", "2", "--gen_kwargs", "max_gen_toks=6",
         "--metadata", json.dumps({"data_dir": str(synthetic_data["root"])})],
        tmp_path / "out", python=str(fresh_venv["python"]), cwd=fresh_venv["cwd"],
    )
    results, samples = read_results(tmp_path / "out")
    assert set(results["results"]["medqa_vanilla"]) >= {"acc,final-answer", "output_tokens,final-answer", "no_answer,final-answer"}
    prompt = samples["medqa_vanilla"][0]["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith("Answer the following multiple-choice question") and prompt.endswith("Answer:")
    assert fresh_venv["site"] in results["configs"]["medqa_vanilla"]["metadata"]["config_source"]
