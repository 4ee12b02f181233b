"""Where the shipped data folders (tasks/, prompts/, training/) live.

In a wheel they sit inside the package; in a source checkout (editable install)
they are the top-level folders of the repository. In the wheel, tasks/ is also the
namespace package ``lm_eval_medreason.tasks`` that the ``lm_eval.tasks`` entry point
names (lm-evaluation-harness PR #4015 scans that package's folder for task YAML), so
it holds task YAML and READMEs only: no code, no other YAML.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_folder(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"lm-eval-medreason data folder '{name}/' is missing next to {_PACKAGE}: reinstall the package"
    )


def tasks_dir() -> Path:
    """The folder of lm-eval task YAML (what `--include_path` would point to)."""
    return _data_folder("tasks")


def prompts_dir() -> Path:
    """The folder of Jinja prompt templates."""
    return _data_folder("prompts")


def training_dir() -> Path:
    """The folder of training recipes and accelerate/DeepSpeed configs."""
    return _data_folder("training")
