"""The functions lm-eval's task YAML points at with ``!function``.

Data flow per sample: ``<benchmark>_dataset`` loads and validates the cases,
``prompt_<strategy>`` renders the prompt, the model answers, ``ScoreResponses``
(the ``final-answer`` filter) turns each raw response into the extracted letter
and its token count, and ``process_results`` turns that into the per-sample
metrics ``acc``, ``output_tokens`` and ``no_answer``. With ``--log_samples``
the raw response stays in ``resps`` and ``{"choice", "output_tokens", "rule", "span"}`` in
``filtered_resps``, as a JSON string (lm-eval writes filtered responses as strings).
"""

import gc
import json
import logging
from collections.abc import Callable

from lm_eval.api.filter import Filter

from lm_eval_medreason.data.loaders import load_cases_with_provenance
from lm_eval_medreason.data.registry import BENCHMARKS, STRATEGIES
from lm_eval_medreason.evaluation import budget
from lm_eval_medreason.evaluation.adaptive import NOT_DRAWN, Rule, vote_accuracy
from lm_eval_medreason.evaluation.answers import read_choice
from lm_eval_medreason.evaluation.model import LIVE, SCALING_COLUMN
from lm_eval_medreason.evaluation.voting import vote_metrics
from lm_eval_medreason.prompts import render_case
from lm_eval_medreason.tokens import check_encoding, count_tokens

log = logging.getLogger(__name__)

def dataset_hook(benchmark: str, columns: Callable[[dict], dict] | None = None):
    """A ``custom_dataset`` hook for one benchmark; lm-eval passes the task's metadata (its YAML ``metadata``,
    ``--metadata`` and model_args) as kwargs, when it builds the task, before any request.

    So this is where scoring's needs are checked: the token encoding loads (else the run stops with one
    line naming ``token_encoding``). The ``provenance`` dict of the task YAML's metadata arrives as the
    task config's own object: filling it puts the sources and the sha256 of the cases into the results
    file (``configs.<task>.metadata.provenance``). ``columns(metadata)``, checked first, gives columns
    every doc gets (the free-form tasks' judge settings, ``freeform.judge_column``)."""

    def load(**metadata):
        import datasets

        extra = columns(metadata) if columns else {}
        extra.update(scaling_column(metadata))
        encoding = check_encoding(metadata)
        cases, provenance = load_cases_with_provenance(benchmark, metadata)
        slot = metadata.get("provenance")
        if slot is not None:  # None: called outside a task built from our YAML (tests, scripts)
            # Empty, or filled by an earlier load of this same task (lm-eval's Task.download may load it again);
            # anything else is a user's --metadata provenance, or one dict shared by several tasks.
            if not isinstance(slot, dict) or (slot and slot != provenance):
                raise ValueError("'provenance' is not a --metadata setting (each task records its own there); remove it")
            slot.update(provenance)
        cases = [{**case, "token_encoding": encoding, **extra} for case in cases]
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(cases)})

    load.__name__ = load.__qualname__ = f"{benchmark}_dataset"
    return load


def scaling_column(metadata: dict) -> dict:
    """The ``medreason_scaling`` column of an ``_adaptive`` or ``_budget`` task (its YAML's ``metadata.scaling``):
    the settings the ``medreason`` model wrapper follows and the scoring replays, checked before any request."""
    mode = metadata.get("scaling")
    if mode == "adaptive":
        return {SCALING_COLUMN: Rule.from_metadata(metadata, metadata["samples"]).as_column()}
    if mode == "budget":
        settings = budget.Settings.from_metadata(metadata)
        base = metadata.get("base")  # lm-eval passes --model_args to tasks as metadata
        if base is not None and not budget.can_continue(str(base)):
            raise ValueError(budget.cannot_continue_message(str(base)))
        if base is None and not any(True for _ in LIVE) and plain_model_loaded():
            raise ValueError(budget.cannot_continue_message(None))
        return {SCALING_COLUMN: settings.as_column()}
    return {}


def plain_model_loaded() -> bool:
    """Whether an lm-eval model other than this package's wrapper lives in this process. lm-eval builds the model
    before the tasks, so a ``_budget`` task built beside one would send its requests to a backend that cannot cut
    and force; a task built with no model at all (lm-eval's own task tests, a script reading its docs) is fine."""
    from lm_eval.api.model import LM

    gc.collect()  # a model dropped by an earlier run in this process is no longer there
    return any(issubclass(type(obj), LM) for obj in gc.get_objects())  # type(): no proxy object's __class__


def prompt_hook(strategy: str):
    """The ``doc_to_text`` hook of a multiple-choice strategy: its prompt template over the question block."""
    template = STRATEGIES[strategy].prompt

    def prompt(doc: dict) -> str:
        return render_case(template, doc)

    prompt.__name__ = prompt.__qualname__ = f"prompt_{strategy}"
    return prompt


# What the task YAML names: `{benchmark}_dataset` for every benchmark of the registry and `prompt_{strategy}`
# for every multiple-choice strategy (module attributes, so that lm-eval's `!function` and pickle find them).
for _name in BENCHMARKS:
    globals()[f"{_name}_dataset"] = dataset_hook(_name)
for _name, _strategy in STRATEGIES.items():
    if _strategy.multiple_choice:
        globals()[f"prompt_{_name}"] = prompt_hook(_name)
del _name, _strategy


def score_response(response: str, doc: dict) -> dict:
    """The extracted letter of one raw response, the token count of all of it (reasoning included), and how the
    letter was read: the rule and the ``[start, end]`` span of the response it came from (``[None, None]`` for none)."""
    response = response or ""  # an API backend may return None for a failed request
    reading = read_choice(response, doc["options"])
    return {
        "choice": reading.letter,
        "output_tokens": count_tokens(response, doc.get("token_encoding")),
        "rule": reading.rule,
        "span": [reading.start, reading.end],
    }


class ScoreResponses(Filter):
    """lm-eval filter: every response becomes the JSON of ``score_response`` (kept in the sample log)."""

    def apply(self, resps, docs):
        resps = [list(responses) for responses in resps]
        _warn_if_not_sampling(resps)
        return [
            [json.dumps(None if r == NOT_DRAWN else score_response(r, doc), ensure_ascii=False) for r in responses]
            for responses, doc in zip(resps, docs)
        ]


def _warn_if_not_sampling(resps: list[list[str]]) -> None:
    """Repeated requests that all came back identical mean the backend did not sample: say so."""
    repeated = [[r for r in responses if r != NOT_DRAWN] for responses in resps]
    repeated = [responses for responses in repeated if len(responses) > 1]
    if repeated and all(len(set(responses)) == 1 for responses in repeated):
        log.warning(
            "every question got %d identical responses: the backend is not sampling (temperature 0, or a fixed "
            "per-request seed such as the one lm-eval's API models send), so every maj@k equals maj@1",
            len(repeated[0]),
        )


def process_results(doc: dict, results: list) -> dict:
    """Per-sample metrics from the scored first response."""
    scored = json.loads(results[0])
    return {
        "acc": float(scored["choice"] == doc["answer_idx"]),
        "output_tokens": float(scored["output_tokens"]),
        "no_answer": float(scored["choice"] is None),
    }


def process_results_maj(doc: dict, results: list) -> dict:
    """Per-question vote curve (maj@k, pass@k) from all sampled responses, plus their mean tokens and no-answer rate."""
    scored = [json.loads(r) for r in results[0]]
    votes = [s["choice"] for s in scored]
    return {
        **vote_metrics(votes, doc["answer_idx"]),
        "output_tokens": sum(s["output_tokens"] for s in scored) / len(scored),
        "no_answer": sum(v is None for v in votes) / len(votes),
    }


def process_results_adaptive(doc: dict, results: list) -> dict:
    """Adaptive voting (``adaptive``): the rule replayed over the samples in the order they were drawn.

    Under the ``medreason`` wrapper the samples end where the rule stopped (the rest are ``NOT_DRAWN``,
    scored ``null``); under a plain backend all 32 are there and only those up to the stop point count.
    ``samples`` and ``output_tokens`` (all drawn samples' tokens) are per question; ``no_answer`` is the
    share of drawn samples without an answer."""
    scored = [json.loads(r) for r in results[0]]
    drawn = scored[:scored.index(None)] if None in scored else scored
    if any(s is not None for s in scored[len(drawn):]):
        raise ValueError(f"question {doc.get('id')}: a sample was drawn after one that was not (responses out of order)")
    votes = [s["choice"] for s in drawn]
    column = doc[SCALING_COLUMN]
    samples = min(column["max_samples"], len(scored))  # lm-eval's `repeats` bounds the samples, as in the wrapper
    rule = Rule(column["threshold"], min(column["round_size"], samples), samples)
    n = rule.stop_point(votes)
    if len(drawn) < len(scored) and n != len(drawn):
        raise ValueError(f"question {doc.get('id')}: the wrapper drew {len(drawn)} samples but the rule stops at {n}")
    return {
        "acc": vote_accuracy(votes[:n], doc["answer_idx"]),
        "samples": float(n),
        "output_tokens": float(sum(s["output_tokens"] for s in drawn[:n])),
        "no_answer": sum(v is None for v in votes[:n]) / n,
    }


def score_budget(envelope: str, doc: dict) -> dict:
    """``score_response`` of the full response, plus per budget the answer and tokens at that budget."""
    settings = doc[SCALING_COLUMN]
    response, forced = budget.unpack(envelope, budget.Settings.from_column(settings))
    full = score_response(response, doc)
    at = {}
    for b in settings["budgets"]:
        if b in forced:
            cut, continuation = forced[b]
            reading = read_choice(response[:cut] + settings["suffix"] + continuation, doc["options"])
            at[str(b)] = {"choice": reading.letter, "output_tokens": count_tokens(response[:cut], doc.get("token_encoding")),
                          "forced": True}
        else:
            at[str(b)] = {"choice": full["choice"], "output_tokens": full["output_tokens"], "forced": False}
    return {**full, "budgets": at}


class ScoreBudget(Filter):
    """lm-eval filter of the ``_budget`` tasks: every envelope becomes the JSON of ``score_budget``."""

    def apply(self, resps, docs):
        return [[json.dumps(score_budget(r, doc), ensure_ascii=False) for r in responses]
                for responses, doc in zip(resps, docs)]


def process_results_budget(doc: dict, results: list) -> dict:
    """``acc@B`` and ``tokens@B`` for every budget, plus the full-budget ``acc``, ``output_tokens``, ``no_answer``."""
    scored = json.loads(results[0])
    metrics = {
        "acc": float(scored["choice"] == doc["answer_idx"]),
        "output_tokens": float(scored["output_tokens"]),
        "no_answer": float(scored["choice"] is None),
    }
    for b, at in scored["budgets"].items():
        metrics[f"acc@{b}"] = float(at["choice"] == doc["answer_idx"])
        metrics[f"tokens@{b}"] = float(at["output_tokens"])
    return metrics
