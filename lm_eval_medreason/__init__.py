"""lm-eval-medreason: inference-time scaling for medical reasoning, as lm-eval tasks.

Kept import-light on purpose: ``lm_eval_medreason.pth`` imports this package at
every Python start-up, so public names are resolved lazily on first use.
"""

__version__ = "0.1.0"

_LAZY = {
    "extract_choice": "lm_eval_medreason.evaluation.answers",
    "read_choice": "lm_eval_medreason.evaluation.answers",
    "match_freeform": "lm_eval_medreason.evaluation.freeform",
    "count_tokens": "lm_eval_medreason.tokens",
    "load_cases": "lm_eval_medreason.data.loaders",
    "tasks_dir": "lm_eval_medreason.resources",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lm_eval_medreason' has no attribute {name!r}")
