"""Training recipes: YAML files of SFTConfig / ModelConfig fields named ``{model}-{data}``.

A recipe may name another with ``base:`` (a shipped recipe name or a path relative to it);
its own keys win. The shipped recipes share ``_study.yaml``, the study's settings, that way,
and a user's recipe can start from a shipped one (``base: qwen2.5-72b-longmonolog``).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lm_eval_medreason.errors import RecipeError
from lm_eval_medreason.resources import training_dir


def recipes_dir() -> Path:
    return training_dir() / "recipes"


def recipe_names() -> list[str]:
    """The shipped recipes (files starting with ``_`` are shared parts, not recipes)."""
    return sorted(p.stem for p in recipes_dir().glob("*.yaml") if not p.name.startswith("_"))


def recipe_path(name_or_path: str, relative_to: Path | None = None) -> Path:
    """A shipped recipe's file, or the given file (relative to ``relative_to``'s folder when given)."""
    candidate = Path(name_or_path)
    if relative_to is not None and not candidate.is_absolute():
        candidate = relative_to.parent / candidate
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    shipped = recipes_dir() / f"{name_or_path}.yaml"
    if shipped.is_file() and "/" not in name_or_path:
        return shipped
    raise RecipeError(f"recipe {name_or_path!r} is neither a file nor one of: {', '.join(recipe_names())}")


def load_recipe(name_or_path: str) -> tuple[dict, Path]:
    """The recipe's settings with its ``base`` chain merged in, and its file."""
    path = recipe_path(name_or_path)
    return _load(path, seen=()), path


def _load(path: Path, seen: tuple[Path, ...]) -> dict:
    if path.resolve() in seen:
        raise RecipeError(f"{path}: base recipes form a cycle ({' -> '.join(str(p) for p in seen)})")
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise RecipeError(f"{path}: cannot read the recipe ({' '.join(str(err).split())})") from None
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of setting: value, got {type(settings).__name__}")
    base = settings.pop("base", None)
    if base is None:
        return settings
    return {**_load(recipe_path(str(base), relative_to=path), seen + (path.resolve(),)), **settings}
