"""Make the plain `lm_eval --tasks jama_longmonolog` see this package's tasks, and `--model medreason` its model.

lm-eval 0.4.x only scans its own tasks folder and `--include_path`; a task
entry-point group is proposed upstream (lm-evaluation-harness PR #4015) but not
released. Until it is, ``lm_eval_medreason.pth`` imports this module at start-up.
It only installs a tiny import hook (nothing else is imported);
when, and only when, ``lm_eval.tasks.manager`` is imported, the hook wraps
``TaskManager.__init__`` so that our tasks folder is scanned after lm-eval's own
tasks and before the user's ``include_path`` (so a user's task of the same name
still wins), which is the precedence PR #4015 proposes.

``TaskManager(include_defaults=False)`` asks for the given paths only, and
lm-eval's own tests check that nothing else appears, so the hook adds nothing
then. An lm-eval that finds our tasks through the entry point itself (an
installed wheel under PR #4015) is left unpatched: it decides alone.

lm-eval 0.4.x has no plug-in group for models either: when ``lm_eval.models`` is imported (lm-eval does
that when it first looks a model up), the hook registers ``medreason`` in lm-eval's model registry as a
lazy ``module:Class`` placeholder, as lm-eval registers its own backends; the wrapper is imported only
when ``--model medreason`` is asked for.

Set ``LM_EVAL_MEDREASON_AUTOLOAD=0`` to switch it off.
"""

import os
import sys

MODEL_NAME = "medreason"
MODEL_TARGET = "lm_eval_medreason.evaluation.model:MedreasonLM"
SWITCH = "LM_EVAL_MEDREASON_AUTOLOAD"


def add_tasks_dir(include_path):
    """``include_path`` with our tasks folder first, unless it is already there."""
    from pathlib import Path

    from lm_eval_medreason.resources import tasks_dir

    ours = tasks_dir()
    if include_path is None:
        paths = []
    elif isinstance(include_path, (list, tuple)):
        paths = list(include_path)
    else:
        paths = [include_path]
    if any(Path(p).resolve() == ours for p in paths):
        return include_path
    return [str(ours), *paths]


def finds_our_tasks(module) -> bool:
    """Whether this lm-eval scans our tasks folder itself, through the ``lm_eval.tasks``
    entry point (``discover_plugin_task_paths`` is PR #4015's name for that scan)."""
    discover = getattr(module, "discover_plugin_task_paths", None)
    if discover is None:
        return False
    from lm_eval_medreason.resources import tasks_dir

    return tasks_dir() in discover()


def patch_task_manager(module) -> None:
    """Wrap ``TaskManager.__init__`` of an imported ``lm_eval.tasks.manager``."""
    import functools
    import inspect

    manager = module.TaskManager
    original = manager.__init__
    if getattr(original, "_medreason_patched", False) or finds_our_tasks(module):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        if bound.arguments.get("include_defaults", True):
            bound.arguments["include_path"] = add_tasks_dir(bound.arguments.get("include_path"))
        original(*bound.args, **bound.kwargs)

    __init__._medreason_patched = True
    manager.__init__ = __init__


def register_model(module) -> None:
    """Register ``--model medreason`` once ``lm_eval.models`` has registered lm-eval's own models."""
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)


# The modules the hook waits for, and what it does once each is loaded.
TARGETS = {"lm_eval.tasks.manager": patch_task_manager, "lm_eval.models": register_model}


class _PatchOnImport:
    """A meta-path finder that lets the normal finders load a TARGET, then patches it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in TARGETS:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            TARGETS[fullname](module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    """Install the hook once; patch right away if lm-eval is already imported."""
    if os.environ.get(SWITCH, "1").lower() in ("0", "false", "no", "off"):
        return
    for name, patch in TARGETS.items():
        if name in sys.modules:
            patch(sys.modules[name])
    if not all(name in sys.modules for name in TARGETS) and not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


install()
