"""`medreason distill --dry-run`: how many requests a run would send, and an estimate of tokens and cost.

Prompt tokens are counted with tiktoken on the rendered teacher prompts (``tokens.count_tokens``).
Completion tokens come from the study's average trace lengths (LongStep 729, LongMonolog 1,223
tokens) plus, for LongMonolog's stage 1, an assumed ``STAGE1_COMPLETION_ESTIMATE`` tokens of
summary (our assumption, not the study's); for stage 2 the summary is also counted as prompt.
Hidden reasoning tokens of o1-style models are billed as output and come on top. Cost uses
``--price-input``/``--price-output`` (USD per 1M tokens) or the small ``PRICES`` table; an
unknown model's cost is reported as unknown. It writes nothing (not even the output's lock):
the output is only read, as a run would read it (``pipeline.plan``).
"""

from __future__ import annotations

from lm_eval_medreason.distillation import selection
from lm_eval_medreason.distillation.pipeline import STYLES, plan, prepare, run_settings
from lm_eval_medreason.tokens import count_tokens

STAGE1_COMPLETION_ESTIMATE = 300  # dry run: assumed length of LongMonolog's stage-1 summary (not from the study)
# USD per 1M tokens (input, output), OpenAI list prices at the time of writing; override with --price-*.
PRICES = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o1": (15.00, 60.00),
    "o1-preview": (15.00, 60.00),
    "o1-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
}


def estimate(options, teacher, price_input: float | None, price_output: float | None) -> str:
    """What a run would send: requests, estimated tokens and cost; sends nothing."""
    templates, items, guard = prepare(options, teacher)
    todo = plan(options, items, run_settings(templates, teacher, options.style))  # reads the output, writes nothing
    pending = [(i, c) for i, c in todo.pending if not (guard and guard.match(c["question"]))]
    stages = len(STYLES[options.style])
    prompt_tokens = sum(count_tokens(templates.render(0, c)) for _, c in pending)
    if stages == 2:
        prompt_tokens += sum(count_tokens(templates.render(1, c, summary="")) + STAGE1_COMPLETION_ESTIMATE for _, c in pending)
    completion = selection.EXPECTED_TRACE_TOKENS[options.style] + (STAGE1_COMPLETION_ESTIMATE if stages == 2 else 0)
    completion_tokens = completion * len(pending)
    lines = [
        f"cases: {len(items)} ({len(items) - len(pending)} done or contaminated, {len(pending)} to send"
        + (f", {len(todo.retry)} of them dropped before and asked again" if todo.retry else "") + ")",
        f"requests: {len(pending) * stages} ({stages} per case)",
        f"prompt tokens: {prompt_tokens:,} (tiktoken)",
        f"completion tokens: ~{completion_tokens:,} ({_source(options.style)}, {selection.EXPECTED_TRACE_TOKENS[options.style]}"
        + (f", + ~{STAGE1_COMPLETION_ESTIMATE} for stage 1" if stages == 2 else "") + ", per case; "
        "hidden reasoning tokens of o1-style models come on top)",
    ]
    model = teacher.model.rsplit("/", 1)[-1].lower()
    known = PRICES.get(model)
    pin = price_input if price_input is not None else (known[0] if known else None)
    pout = price_output if price_output is not None else (known[1] if known else None)
    if pin is None or pout is None:
        lines.append(f"cost: unknown (no price for {teacher.model}; pass --price-input and --price-output, USD per 1M tokens)")
    else:
        cost = (prompt_tokens * pin + completion_tokens * pout) / 1e6
        lines.append(f"cost: ~${cost:,.2f} (${pin}/1M input, ${pout}/1M output)")
    return "\n".join(lines)


def _source(style: str) -> str:
    return "the study's mean trace" if style in selection.STUDY_MEAN_TOKENS else "our estimate of a CoT trace"
