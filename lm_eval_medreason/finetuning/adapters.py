"""The LoRA adapter a training run saves: check that it is real, merge it into full weights.

LoRA under DeepSpeed ZeRO-3 has saved adapters with no tensors, or with the sharded
placeholders of shape [0] (TRL issue 4416, PEFT issue 2892): the run looks fine and the
adapter is the base model. ``check_adapter`` fails loudly on any of that, and on
``lora_B`` weights that are all zero (LoRA's initial state: nothing was learned).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lm_eval_medreason.errors import AdapterError

ADAPTER_FILE = "adapter_model.safetensors"


@dataclass(frozen=True)
class AdapterStats:
    tensors: int
    parameters: int
    lora_b_nonzero: int  # lora_B matrices with at least one non-zero weight
    lora_b: int


def check_adapter(directory) -> AdapterStats:
    """Stats of the adapter in ``directory``; an AdapterError when it is missing, empty or all-zero."""
    from safetensors import safe_open

    path = Path(directory) / ADAPTER_FILE
    if not path.is_file():
        raise AdapterError(f"{path}: no adapter was saved")
    hint = "the ZeRO-3 weights were not gathered on save (set zero3_save_16bit_model: true; TRL #4416, PEFT #2892)"
    with safe_open(str(path), framework="pt") as weights:
        tensors = {name: weights.get_tensor(name) for name in weights.keys()}
    if not tensors:
        raise AdapterError(f"{path}: the adapter holds no tensors: {hint}")
    empty = [name for name, t in tensors.items() if t.numel() == 0]
    if empty:
        raise AdapterError(f"{path}: {len(empty)} of {len(tensors)} tensors are empty, e.g. {empty[0]}: {hint}")
    lora_b = {name: t for name, t in tensors.items() if "lora_B" in name}
    if not lora_b:
        raise AdapterError(f"{path}: no lora_B weights among {len(tensors)} tensors; is this a LoRA adapter?")
    nonzero = sum(bool(t.count_nonzero()) for t in lora_b.values())
    if nonzero == 0:
        raise AdapterError(
            f"{path}: all {len(lora_b)} lora_B weights are zero, so the adapter changes nothing "
            "(no optimizer step reached them: check the learning rate, warm-up and max_steps, or the ZeRO-3 save)"
        )
    return AdapterStats(len(tensors), sum(t.numel() for t in tensors.values()), nonzero, len(lora_b))


def merge_adapter(adapter_dir, output_dir, dtype: str = "bfloat16") -> Path:
    """Base model + adapter merged into full weights (with the tokenizer) in ``output_dir``, for serving."""
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), dtype=getattr(torch, dtype))
    merged = model.merge_and_unload()
    output = Path(output_dir)
    merged.save_pretrained(output)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(output)
    return output
