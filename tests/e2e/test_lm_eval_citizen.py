"""lm-eval's own tests hold with this package installed: its task test-suite passes on every task of
ours, ``TaskManager(include_defaults=False)`` still means "the given paths only", and the
``lm_eval.tasks`` entry point (lm-evaluation-harness PR #4015) names a folder of task YAML only.

lm-eval's test files are not copied into this repository: a session fixture takes them from the
sdist of the installed lm-eval on PyPI, and the tests that run them skip, saying why, when pip
cannot fetch it."""

import importlib.metadata as md
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lm_eval_medreason import autoload
from lm_eval_medreason.prompts import render_case
from lm_eval_medreason.resources import prompts_dir, tasks_dir
from tests.support.synthetic import write_data_dir

REPO = Path(__file__).resolve().parents[2]
LM_EVAL_TESTS = ("test_tasks.py", "test_task_manager.py")
CHANGED_FILES = Path(".github/outputs/tasks_all_changed_and_modified_files.txt")

# lm-eval's tests/utils.py, which test_tasks.py imports, is not in the sdist. This stand-in keeps the
# contract test_tasks.py relies on: the tasks named by the YAML files listed in CHANGED_FILES.
UTILS = f'''from lm_eval.tasks._yaml_loader import load_yaml


def new_tasks():
    paths = open("{CHANGED_FILES}", encoding="utf-8").read().split()
    return [load_yaml(path, resolve_func=False)["task"] for path in paths]
'''

# How PR #4015 (lm_eval/tasks/manager.py, _resolve_task_dir) turns an entry point's value into the
# folder it scans recursively for *.yaml: a package's folder, or the folder holding a module's file.
PR_4015_RESOLVE = """import importlib.util, sys
from pathlib import Path
spec = importlib.util.find_spec(sys.argv[1].split(":", 1)[0].strip())
locations = list(spec.submodule_search_locations or [])
print(sys.modules["lm_eval_medreason"].__file__)
print(Path(locations[0]).resolve() if locations else Path(spec.origin).resolve().parent)
"""


@pytest.fixture(scope="session")
def lm_eval_tests(tmp_path_factory) -> Path:
    """A folder holding lm-eval's own tests/test_tasks.py and tests/test_task_manager.py, from the
    sdist of the installed lm-eval version, laid out the way those files expect."""
    version = md.version("lm-eval")
    download = tmp_path_factory.mktemp("lm-eval-sdist")
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--timeout", "30",
         "--retries", "1", "-d", str(download), f"lm-eval=={version}"],
        capture_output=True, text=True,
    )
    if fetched.returncode != 0:
        reason = (fetched.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"pip could not fetch lm-eval {version}'s sdist from the package registry: {reason}")
    sdist = next(download.glob("lm_eval-*.tar.gz"))
    root = tmp_path_factory.mktemp("lm-eval-tests")
    (root / "tests").mkdir()
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[-1]: m for m in archive.getmembers() if m.isfile()}
        for name in LM_EVAL_TESTS:
            if f"tests/{name}" not in members:
                pytest.skip(f"{sdist.name} on the package registry holds no tests/{name}")
            (root / "tests" / name).write_bytes(archive.extractfile(members[f"tests/{name}"]).read())
    (root / "tests" / "__init__.py").write_text("")
    (root / "tests" / "utils.py").write_text(UTILS)
    (root / "pytest.ini").write_text("[pytest]\n")  # its own rootdir: none of our settings or fixtures
    return root


def run_lm_eval_tests(root: Path, selection: str, data_dir: Path) -> tuple[subprocess.CompletedProcess, list]:
    """Run some of lm-eval's tests with the import hook on and our tasks reading ``data_dir``;
    returns the pytest process and its test cases as (task id or None, test name, failure text)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDREASON_") and k != autoload.SWITCH}
    env.update(MEDREASON_DATA_DIR=str(data_dir), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    junit = root / "junit.xml"
    junit.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", selection],
        cwd=root, env=env, capture_output=True, text=True,
    )
    assert junit.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    cases = []
    for case in ET.parse(junit).iter("testcase"):
        name, _, task = case.get("name").partition("[")
        problems = [f"{p.tag}: {p.get('message', '')}".splitlines()[0]
                    for p in case if p.tag in ("failure", "error", "skipped")]
        cases.append((task.rstrip("]") or None, name, problems))
    return result, cases


def test_lm_eval_task_suite_passes_on_every_task(lm_eval_tests, tmp_path):
    """lm-eval's TestNewTasksElseDefault, pointed at every task YAML of ours (the _maj and _freeform
    ones too) the way lm-eval's CI points it at changed files, on synthetic data."""
    leaves = sorted(tasks_dir().glob("*/*.yaml"))
    (lm_eval_tests / CHANGED_FILES).parent.mkdir(parents=True, exist_ok=True)
    (lm_eval_tests / CHANGED_FILES).write_text("\n".join(map(str, leaves)) + "\n")
    # test_construct_requests takes 10 cases of each task; the JAMA subset is two thirds of the file
    data = write_data_dir(tmp_path / "data", n=15)["root"]
    result, cases = run_lm_eval_tests(lm_eval_tests, "tests/test_tasks.py::TestNewTasksElseDefault", data)
    problems = [f"{name}[{task}] {problem}" for task, name, found in cases for problem in found]
    assert not problems, "\n".join(problems[:20]) + "\n" + result.stdout[-3000:]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    tests_by_task = {}
    for task, name, _ in cases:
        tests_by_task.setdefault(task, set()).add(name)
    assert set(tests_by_task) == {path.stem for path in leaves}
    expected = tests_by_task[leaves[0].stem]
    assert {"test_download", "test_doc_to_text", "test_construct_requests"} <= expected
    assert all(names == expected for names in tests_by_task.values())


def test_lm_eval_include_defaults_false_test_passes(lm_eval_tests, tmp_path):
    """lm-eval's own check that TaskManager(include_defaults=False) indexes its include_path only."""
    test = "tests/test_task_manager.py::TestTaskManagerIntegration::test_include_defaults_false_with_custom_path"
    result, cases = run_lm_eval_tests(lm_eval_tests, test, tmp_path)
    assert [(name, found) for _, name, found in cases] == [("test_include_defaults_false_with_custom_path", [])], (
        result.stdout[-3000:]
    )
    assert result.returncode == 0


@pytest.mark.parametrize("template", sorted(path.name for path in prompts_dir().glob("eval_*.j2")))
def test_no_evaluation_prompt_ends_in_whitespace(template):
    """test_doc_to_text of lm-eval's suite, offline: a prompt ending in whitespace meets lm-eval's
    whitespace target delimiter."""
    case = {"question": " A man has chest pain.\n", "options": {"A": "Angina ", "B": "Reflux\n", "C": None}}
    prompt = render_case(template, case)
    assert "A man has chest pain." in prompt and not prompt[-1].isspace()


@pytest.fixture
def unpatched_manager(monkeypatch):
    """lm-eval's task-manager module with TaskManager.__init__ as lm-eval wrote it (restored afterwards)."""
    import lm_eval.tasks.manager as manager

    init = manager.TaskManager.__init__
    monkeypatch.setattr(manager.TaskManager, "__init__", getattr(init, "__wrapped__", init))
    return manager


def test_hook_adds_nothing_when_defaults_are_off(unpatched_manager, tmp_path):
    autoload.patch_task_manager(unpatched_manager)
    assert unpatched_manager.TaskManager.__init__._medreason_patched
    (tmp_path / "mine.yaml").write_text(
        "task: my_only_task\ndataset_path: json\noutput_type: generate_until\ntest_split: test\n"
        "doc_to_text: q\ndoc_to_target: a\n"
    )
    manager = unpatched_manager.TaskManager(include_path=str(tmp_path), include_defaults=False)
    assert manager.all_tasks == ["my_only_task"]


@pytest.mark.parametrize(
    "found_by_lm_eval, patched",
    [(True, False), (False, True)],
    ids=["lm-eval-finds-our-folder-itself", "entry-point-misses-our-folder"],
)
def test_hook_steps_aside_for_an_lm_eval_that_reads_the_entry_point(
    unpatched_manager, monkeypatch, found_by_lm_eval, patched
):
    """PR #4015's discover_plugin_task_paths finds an installed wheel through the entry point, where
    patching too would index every task twice; it misses an editable install (``lm_eval_medreason.tasks``
    exists in the wheel only), where the hook must still add the tasks."""
    folders = [tasks_dir()] if found_by_lm_eval else [Path("/elsewhere/tasks")]
    monkeypatch.setattr(unpatched_manager, "discover_plugin_task_paths", lambda: folders, raising=False)
    autoload.patch_task_manager(unpatched_manager)
    assert getattr(unpatched_manager.TaskManager.__init__, "_medreason_patched", False) is patched


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """Our wheel, built offline and installed (no dependencies) into a folder of its own."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root), str(REPO)],
        check=True,
    )
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
         str(next(root.glob("lm_eval_medreason-*.whl")))],
        check=True,
    )
    return target


def test_entry_point_names_a_folder_of_task_yaml_only(installed_wheel):
    """Resolved as PR #4015 resolves it, the entry point gives the wheel's tasks folder, not the
    package root (whose training/ recipes and configs are YAML too)."""
    dist = next(md.distributions(name="lm-eval-medreason", path=[str(installed_wheel)]))
    entry_points = [ep for ep in dist.entry_points if ep.group == "lm_eval.tasks"]
    assert [ep.name for ep in entry_points] == ["medreason"]
    env = {**os.environ, "PYTHONPATH": str(installed_wheel), autoload.SWITCH: "0"}
    package, folder = subprocess.run(
        [sys.executable, "-c", PR_4015_RESOLVE, entry_points[0].value],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.splitlines()
    site = installed_wheel.resolve()
    assert Path(package).resolve() == site / "lm_eval_medreason" / "__init__.py"
    assert Path(folder) == site / "lm_eval_medreason" / "tasks"
    files = [path.relative_to(folder) for path in Path(folder).rglob("*") if path.is_file()]
    strays = [str(p) for p in files if not (p.suffix == ".yaml" or p.name.endswith("_yaml") or p.name == "README.md")]
    assert not strays
    shipped = sorted(path.relative_to(tasks_dir()) for path in tasks_dir().rglob("*.yaml"))
    assert sorted(p for p in files if p.suffix == ".yaml") == shipped
