"""``--model medreason``: an lm-eval model that wraps any backend and runs the scaling tasks' sampling plans.

``lm_eval --model medreason --model_args base=vllm,pretrained=...`` builds the backend named by ``base``
with every other argument, and passes every request through to it, except those of two kinds of task,
recognised by the column their docs carry (``SCALING_COLUMN``, set by the dataset hook):

- ``_adaptive``: lm-eval asks for 32 samples per question; the wrapper draws them in rounds and stops a
  question once ``adaptive.Rule`` says its vote is decided. Each round sends every undecided question's
  next samples in one batch; a stopped question gets no more requests (its remaining slots are
  ``adaptive.NOT_DRAWN``, which the task does not score).
- ``_budget``: one full-budget generation per question; then, in one batch, a forced answer for every
  budget the response exceeds (``budget``), returned together as one envelope per question.

The first batch holds every passed-through request, the budget tasks' generations and the first round of
every adaptive question, so the backend stays busy; later rounds are batches of their own.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM

from lm_eval_medreason.evaluation import budget
from lm_eval_medreason.evaluation.adaptive import NOT_DRAWN, Rule
from lm_eval_medreason.evaluation.answers import read_choice

log = logging.getLogger(__name__)

SCALING_COLUMN = "medreason_scaling"
NAME = "medreason"
# Every wrapper alive in this process: the _budget tasks' dataset hook checks that one exists.
LIVE: weakref.WeakSet = weakref.WeakSet()


@dataclass
class _Adaptive:
    """One adaptive question: its request, the slots lm-eval expects answers in, what was drawn so far."""

    request: Instance
    slots: list[int]
    rule: Rule
    responses: list[str] = field(default_factory=list)
    votes: list[str | None] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return bool(self.votes) and self.rule.stops(self.votes)

    def add(self, responses: list[str]) -> None:
        options = self.request.doc["options"]
        self.responses += responses
        self.votes += [read_choice(r or "", options).letter for r in responses]


class MedreasonLM(LM):
    """Wraps the lm-eval backend ``base``; see the module docstring."""

    def __init__(self, base: str | None = None, **backend_args):
        super().__init__()
        if not base:
            raise ValueError(f"--model {NAME} needs base=BACKEND in --model_args (hf, vllm, local-completions, "
                             "local-chat-completions or any other lm-eval model name)")
        if base == NAME:
            raise ValueError(f"--model_args base={NAME} would wrap the wrapper: name an lm-eval backend such as hf")
        from lm_eval.api.registry import get_model

        self.base_name = base
        self.base = get_model(base).create_from_arg_obj(backend_args)
        LIVE.add(self)

    # -------------------------------------------------------- everything but generation goes to the backend

    def __getattr__(self, name):
        if name == "base":  # not set yet: __init__ failed half-way
            raise AttributeError(name)
        return getattr(self.base, name)

    def loglikelihood(self, requests, *args, **kwargs):
        return self.base.loglikelihood(requests, *args, **kwargs)

    def loglikelihood_rolling(self, requests, *args, **kwargs):
        return self.base.loglikelihood_rolling(requests, *args, **kwargs)

    def apply_chat_template(self, chat_history, *args, **kwargs):
        return self.base.apply_chat_template(chat_history, *args, **kwargs)

    def chat_template(self, chat_template=False):
        return self.base.chat_template(chat_template)

    @property
    def tokenizer_name(self) -> str:
        return self.base.tokenizer_name

    @property
    def rank(self) -> int:
        return self.base.rank

    @property
    def world_size(self) -> int:
        return self.base.world_size

    @property
    def device(self):
        return self.base.device

    def all_gather(self, tensor):
        return self.base.all_gather(tensor)

    def gather_object(self, obj, dst=0):
        return self.base.gather_object(obj, dst)

    def barrier(self) -> None:
        self.base.barrier()

    # -------------------------------------------------------- generation

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """The backend's responses, in ``requests`` order, with the scaling tasks' plans carried out."""
        results: list[str | None] = [None] * len(requests)
        plain, budgeted, adaptive = self._sort(requests)
        if budgeted:
            self._check_can_continue()
        if adaptive:
            _check_sampling(adaptive)
        batch = [requests[i] for i in plain] + [requests[i] for i in budgeted]
        first = [(q, q.rule.next_round(0)) for q in adaptive]
        batch += [q.request for q, k in first for _ in range(k)]
        responses = self.base.generate_until(batch, disable_tqdm=disable_tqdm) if batch else []
        for i, response in zip(plain, responses):
            results[i] = response
        full = responses[len(plain):len(plain) + len(budgeted)]
        position = len(plain) + len(budgeted)
        for q, k in first:
            q.add(responses[position:position + k])
            position += k
        settings = [budget.Settings.from_column(requests[i].doc[SCALING_COLUMN]) for i in budgeted]
        forced = self._forcing_requests(requests, budgeted, settings, full)
        pending, continuations, round_number = [request for request, _ in forced], [], 1
        while True:  # later rounds: the forced answers (once), and the undecided questions' next samples
            rounds = [(q, q.rule.next_round(len(q.votes))) for q in adaptive if not q.done]
            batch = pending + [q.request for q, k in rounds for _ in range(k)]
            if not batch:
                break
            round_number += 1
            log.info("medreason: round %d: %d forced answers, %d questions still voting (%d samples)",
                     round_number, len(pending), len(rounds), len(batch) - len(pending))
            responses = self.base.generate_until(batch, disable_tqdm=disable_tqdm)
            continuations += responses[:len(pending)]
            position = len(pending)
            for q, k in rounds:
                q.add(responses[position:position + k])
                position += k
            pending = []
        self._finish_budgets(results, budgeted, settings, full, forced, continuations)
        for q in adaptive:
            for n, slot in enumerate(q.slots):
                results[slot] = q.responses[n] if n < len(q.responses) else NOT_DRAWN
        if adaptive:
            drawn = sum(len(q.responses) for q in adaptive)
            log.info("medreason: adaptive voting drew %d of %d samples (%.1f per question)",
                     drawn, sum(len(q.slots) for q in adaptive), drawn / len(adaptive))
        return results

    def _sort(self, requests: list[Instance]):
        """Indices of passed-through and budget requests, and the adaptive questions (one per request object:
        lm-eval repeats the same object once per sample)."""
        plain, budgeted, adaptive = [], [], {}
        for i, request in enumerate(requests):
            scaling = request.doc.get(SCALING_COLUMN) if isinstance(request.doc, dict) else None
            mode = scaling.get("mode") if isinstance(scaling, dict) else None
            if mode == "budget":
                budgeted.append(i)
            elif mode == "adaptive":
                if id(request) not in adaptive:
                    rule = Rule(scaling["threshold"], scaling["round_size"], scaling["max_samples"])
                    adaptive[id(request)] = _Adaptive(request, [], rule)
                adaptive[id(request)].slots.append(i)
            else:
                plain.append(i)
        for q in adaptive.values():  # lm-eval's `repeats` bounds the samples
            if len(q.slots) < q.rule.max_samples:
                q.rule = Rule(q.rule.threshold, min(q.rule.round_size, len(q.slots)), len(q.slots))
        return plain, budgeted, list(adaptive.values())

    def _check_can_continue(self) -> None:
        """Before any request: a budget task needs a text-prompt backend and its tokenizer."""
        if not budget.can_continue(self.base_name):
            raise ValueError(budget.cannot_continue_message(self.base_name))
        if getattr(self.base, "tokenizer", None) is None or not callable(self.base.tokenizer):
            raise ValueError(f"the _budget tasks cut responses with the model's own tokenizer, and backend "
                             f"{self.base_name!r} has none: add tokenizer=<model name or folder> to --model_args")

    def _forcing_requests(self, requests, budgeted, settings, full) -> list[tuple[Instance, tuple[int, int, int]]]:
        """For every budget request and every budget its response exceeds, the forcing request and
        (index in ``budgeted``, budget, cut offset)."""
        forced = []
        for n, (i, setting, response) in enumerate(zip(budgeted, settings, full)):
            request = requests[i]
            context = request.args[0]
            kwargs = {"until": [], "max_gen_toks": setting.answer_tokens, "do_sample": False, "temperature": 0.0}
            for b, cut in budget.cut_offsets(response or "", self.base.tokenizer, setting.budgets).items():
                prompt = budget.forced_prompt(context, response, cut, setting)
                forcing = Instance("generate_until", request.doc, (prompt, kwargs), request.idx, request.metadata)
                forced.append((forcing, (n, b, cut)))
        return forced

    @staticmethod
    def _finish_budgets(results, budgeted, settings, full, forced, continuations) -> None:
        """Every budget request's envelope, from its full response and its forced continuations."""
        per_request = [dict() for _ in budgeted]
        for (_, (n, b, cut)), text in zip(forced, continuations):
            per_request[n][b] = (cut, text or "")
        for n, i in enumerate(budgeted):
            results[i] = budget.pack(full[n] or "", per_request[n], settings[n])


def _check_sampling(adaptive: list[_Adaptive]) -> None:
    """Before any request: adaptive voting needs sampled responses. Greedy ones are all alike (nothing to vote
    on), and lm-eval's ``--use_cache`` would keep the slots a stopped question never drew and hand them back."""
    for q in adaptive:
        kwargs = q.request.args[1]
        if kwargs.get("do_sample") is False or kwargs.get("temperature") == 0:
            raise ValueError(f"the _adaptive tasks vote over sampled responses, but task {q.request.task_name} has "
                             f"do_sample={kwargs.get('do_sample')}, temperature={kwargs.get('temperature')}: remove "
                             "do_sample=false / temperature=0 from --gen_kwargs")
