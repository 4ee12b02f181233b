"""The .pth import hook: lm-eval's TaskManager sees our tasks with no flag, after its own
and before the user's include_path; nothing is imported until lm-eval is."""

import os
import subprocess
import sys

import pytest

from lm_eval_medreason.resources import tasks_dir


def python(code: str, **env) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "LM_EVAL_MEDREASON_AUTOLOAD"}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=environment).stdout.strip()


def test_startup_imports_only_the_hook():
    out = python("import sys; print(sorted(m for m in sys.modules if m.startswith(('lm_eval', 'jinja2', 'datasets', 'tiktoken'))))")
    assert out == "['lm_eval_medreason', 'lm_eval_medreason.autoload']"


LIST_OURS = (
    "from lm_eval.tasks import TaskManager\n"
    "tm = TaskManager()\n"
    "print(sorted(n for n in tm.all_groups if 'medreason' in n))"
)


def test_task_manager_sees_our_groups_without_include_path():
    from lm_eval_medreason.evaluation.tasks import expected_files

    groups = [name[1:-5] for name in expected_files() if name.startswith("_medreason_") and name.endswith(".yaml")]
    assert len(groups) >= 8
    assert python(LIST_OURS) == str(sorted(groups))


def test_switched_off_by_environment():
    assert python(LIST_OURS, LM_EVAL_MEDREASON_AUTOLOAD="0") == "[]"


def test_explicit_include_path_is_not_scanned_twice():
    from lm_eval.tasks import TaskManager

    from lm_eval_medreason.autoload import add_tasks_dir

    assert add_tasks_dir([str(tasks_dir())]) == [str(tasks_dir())]
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    assert manager.task_index["medqa_cot"].yaml_path == tasks_dir() / "medqa" / "medqa_cot.yaml"


def test_user_include_path_overrides_a_task_of_ours(tmp_path):
    from lm_eval.tasks import TaskManager

    (tmp_path / "mine.yaml").write_text(
        "task: medqa_cot\ndataset_path: json\noutput_type: generate_until\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n"
    )
    manager = TaskManager(include_path=str(tmp_path))
    assert manager.task_index["medqa_cot"].yaml_path == tmp_path / "mine.yaml"
    assert manager.task_index["medqa_longstep"].yaml_path.parent == tasks_dir() / "medqa"


def test_hook_patches_an_already_imported_lm_eval():
    out = python(
        "import lm_eval.tasks.manager as m, lm_eval_medreason.autoload as a\n"
        "a.install(); a.install()\n"
        "print(m.TaskManager.__init__._medreason_patched, 'jama_cot' in m.TaskManager().all_tasks)"
    )
    assert out == "True True"


@pytest.mark.parametrize("given", [None, "/somewhere", ["/a", "/b"]])
def test_ours_comes_before_the_users_paths(given):
    from lm_eval_medreason.autoload import add_tasks_dir

    expected = [] if given is None else [given] if isinstance(given, str) else given
    assert add_tasks_dir(given) == [str(tasks_dir()), *expected]


FIND_MODEL = (
    "from lm_eval.api.registry import get_model\n"
    "try:\n"
    "    cls = get_model('medreason')\n"
    "    print(cls.__module__ + '.' + cls.__name__, get_model('hf').__name__)\n"
    "except ValueError:\n"
    "    print('missing')\n"
)


def test_lm_eval_finds_the_medreason_model_and_still_its_own():
    """``--model medreason`` resolves through lm-eval's own registry lookup; lm-eval's backends stay there."""
    assert python(FIND_MODEL) == "lm_eval_medreason.evaluation.model.MedreasonLM HFLM"


def test_the_model_is_registered_lazily():
    """Registering imports nothing of the wrapper: only the lookup of ``medreason`` does."""
    code = ("import sys, lm_eval.models\n"
            "from lm_eval.api.registry import model_registry\n"
            "print('medreason' in model_registry, 'lm_eval_medreason.evaluation.model' in sys.modules)")
    assert python(code) == "True False"


def test_model_switched_off_by_environment():
    assert python(FIND_MODEL, LM_EVAL_MEDREASON_AUTOLOAD="0") == "missing"


def test_model_registered_when_lm_eval_models_was_imported_first():
    out = python(
        "import lm_eval.models\n"
        "from lm_eval.api.registry import model_registry\n"
        "print('medreason' in model_registry)\n"
    )
    assert out == "True"
    out = python(
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != '_PatchOnImport']\n"
        "import lm_eval.models\n"
        "from lm_eval.api.registry import model_registry\n"
        "import lm_eval_medreason.autoload as a; a.install(); a.install()\n"
        "print('medreason' in model_registry)\n"
    )
    assert out == "True"
