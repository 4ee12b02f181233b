"""Padding fraction of SFT batches, with and without packing, on a length distribution like the study's.

No training: the batches are built by TRL's own code on examples of the sampled lengths, and
the padding is counted on what comes out. Lengths: log-normal with a mean of about 1,223
tokens and a long right tail (sigma 0.7), clipped to [64, 8192] (8,192 = the recipes'
max_length), N = 5,000, seed fixed. Rows:

- padded batches: TRL's ``DataCollatorForLanguageModeling`` (padding_free=False) right-pads
  each batch to its longest example; padding = positions whose attention mask is 0. Batches
  in random order (the Trainer's default sampler) or grouped by length (transformers'
  ``LengthGroupedSampler``, the Trainer's ``train_sampling_strategy="group_by_length"``,
  given the effective batch of 8 examples as the Trainer does);
- padding-free (``padding_free=True``, the recipes' setting): the collator concatenates the
  batch into one row; padding = positions beyond the examples' tokens;
- packing: TRL's ``pack_dataset(..., seq_length=8192, strategy="bfd")`` (what
  ``packing=True`` does), then either every pack padded to 8,192 (a fixed-shape
  batch, without padding-free) or TRL's own way, which switches padding-free on for "bfd"
  (the collator flattens the packs and resets position ids at each example).

    python -m benchmarks.padding_fraction [--examples 5000] [--mean 1223] [--sigma 0.7] [--seed 0]
"""

import argparse
import math
import statistics

SEQ_LENGTH = 8192
EFFECTIVE_BATCH = 8


def sample_lengths(n: int, mean: float, sigma: float, seed: int) -> list[int]:
    import numpy as np

    rng = np.random.default_rng(seed)
    mu = math.log(mean) - sigma**2 / 2  # so that the (unclipped) mean is `mean`
    return np.clip(rng.lognormal(mu, sigma, n).round(), 64, SEQ_LENGTH).astype(int).tolist()


def count(collator, batches: list[list[dict]]) -> tuple[int, int, int]:
    """(batches, positions, padding positions) of the collator's output over ``batches`` of examples."""
    positions = padding = 0
    for examples in batches:
        out = collator(examples)
        positions += out["input_ids"].numel()
        if "attention_mask" in out:
            padding += int((out["attention_mask"] == 0).sum())
        else:  # padding-free: one row; its real tokens are the examples'
            padding += out["input_ids"].numel() - sum(len(example["input_ids"]) for example in examples)
    return len(batches), positions, padding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--mean", type=float, default=1223.0, help="mean length in tokens before clipping")
    parser.add_argument("--sigma", type=float, default=0.7, help="log-normal sigma: the length of the tail")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import datasets
    import torch
    from datasets import Dataset
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    datasets.disable_progress_bars()
    lengths = sample_lengths(args.examples, args.mean, args.sigma, args.seed)
    ordered = sorted(lengths)
    tokens = sum(lengths)
    print(f"{len(lengths)} examples, {tokens:,} tokens: mean {statistics.mean(lengths):,.0f}, median "
          f"{ordered[len(ordered) // 2]:,}, p90 {ordered[int(len(ordered) * 0.9)]:,}, p99 "
          f"{ordered[int(len(ordered) * 0.99)]:,}, max {ordered[-1]:,} ({sum(n == SEQ_LENGTH for n in lengths)} at "
          f"{SEQ_LENGTH:,}); log-normal sigma {args.sigma}, seed {args.seed}\n")

    padded = DataCollatorForLanguageModeling(pad_token_id=0)
    padding_free = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    generator = torch.Generator().manual_seed(args.seed)
    random_order = torch.randperm(len(lengths), generator=generator).tolist()

    examples = [{"input_ids": [1] * n} for n in lengths]

    def batches(order: list[int], size: int) -> list[list[dict]]:
        return [[examples[i] for i in order[at : at + size]] for at in range(0, len(order), size)]

    rows = []
    for size in (1, 4, 8):
        rows.append((f"padded, per-device batch {size}, random order", count(padded, batches(random_order, size))))
    # the Trainer gives the sampler train_batch_size x gradient_accumulation_steps: the effective batch on one device
    grouped = list(LengthGroupedSampler(EFFECTIVE_BATCH, lengths=lengths,
                                        generator=torch.Generator().manual_seed(args.seed)))
    for size in (4, 8):
        rows.append((f"padded, per-device batch {size}, group_by_length", count(padded, batches(grouped, size))))
    for size in (4, 8):
        rows.append((f"padding-free, per-device batch {size}", count(padding_free, batches(random_order, size))))
    rows.append(("padding-free, batch 8, pad_to_multiple_of 128",
                 count(DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True, pad_to_multiple_of=128),
                       batches(random_order, 8))))

    dataset = Dataset.from_dict({"input_ids": [[1] * n for n in lengths]})
    packed = pack_dataset(dataset, seq_length=SEQ_LENGTH, strategy="bfd")
    pack_lengths = [sum(seq) for seq in packed["seq_lengths"]]
    per_pack = [len(seq) for seq in packed["seq_lengths"]]
    assert sum(pack_lengths) == tokens and sum(per_pack) == len(lengths)  # nothing cut, nothing lost
    packs = [[{"input_ids": ids, "seq_lengths": seq}] for ids, seq in zip(packed["input_ids"], packed["seq_lengths"])]
    to_seq_length = DataCollatorForLanguageModeling(pad_token_id=0, pad_to_multiple_of=SEQ_LENGTH)
    rows.append((f"packed (bfd), one pack per batch padded to {SEQ_LENGTH:,}", count(to_seq_length, packs)))
    rows.append(("packed (bfd), one pack per batch, padding-free (TRL's `packing: true`)", count(padding_free, packs)))

    print("| batching | batches | positions | padding | padding fraction |")
    print("|---|---|---|---|---|")
    for name, (n_batches, n_positions, n_padding) in rows:
        print(f"| {name} | {n_batches:,} | {n_positions:,} | {n_padding:,} | {n_padding / n_positions:.1%} |")
    print(f"\npacking: {len(packed):,} packs of {statistics.mean(pack_lengths):,.0f} tokens on average "
          f"({statistics.mean(pack_lengths) / SEQ_LENGTH:.1%} full), {statistics.mean(per_pack):.1f} examples per pack "
          f"(1 to {max(per_pack)}): at {EFFECTIVE_BATCH} rows per optimizer step, "
          f"{math.ceil(len(packed) / EFFECTIVE_BATCH)} steps per epoch instead of "
          f"{math.ceil(len(lengths) / EFFECTIVE_BATCH)}")


if __name__ == "__main__":
    main()
