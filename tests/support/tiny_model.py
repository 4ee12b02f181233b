"""A tiny Qwen2-shaped causal LM and BPE tokenizer, built locally (no hub), for end-to-end runs."""

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "A 45-year-old man presents with chest pain radiating to the back.",
    "Which of the following is the most likely diagnosis?",
    "The answer is (C). Final answer: B. Answer: A. D. E.",
    "Let's think step by step. Hmm, wait, but actually the findings suggest pulmonary embolism.",
    "Step 1. Summarize the key findings: history, examination, laboratory and imaging results.",
    "You are an experienced physician thinking through a difficult clinical case.",
    "<think> reasoning </think> The most appropriate next step in management is surgery.",
]


def build_tiny_model(directory: Path, seed: int = 0) -> Path:
    """Train a small BPE tokenizer, build a 2-layer Qwen2 model with random weights, save both."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = 8192
    tokenizer.save_pretrained(directory)

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
        initializer_range=0.5,  # varied, not degenerate, random outputs
    )
    Qwen2ForCausalLM(config).save_pretrained(directory)
    return directory
