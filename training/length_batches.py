"""Feeding the fine-tuning loop: batches of similar length, padded to their longest.

On short, mixed-length text, padding each batch to its own longest item is several
times faster than fixed-length padding (NOTES: 129 vs 33 examples/s on 2 cores).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import Sampler
from transformers import PreTrainedTokenizerBase

Item = tuple[list[int], int]  # token ids, label id
Collate = Callable[[list[Item]], dict[str, torch.Tensor]]


class LengthGroupedBatches(Sampler[list[int]]):
    """Shuffled batches whose members have similar lengths.

    The data is shuffled, cut into pools of `pool_batches` batches, each pool is
    sorted by length and cut into batches, and the batch order is shuffled again:
    random enough for SGD, with little padding inside a batch.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, seed: int, pool_batches: int = 50
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        batches: list[list[int]] = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start : start + self.pool], key=self.lengths.__getitem__)
            batches.extend(
                pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)
            )
        rng.shuffle(batches)
        return iter(batches)


def collate_padded(pad_id: int) -> Collate:
    def collate(items: list[Item]) -> dict[str, torch.Tensor]:
        width = max(len(ids) for ids, _ in items)
        input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, (ids, _) in enumerate(items):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = 1
        labels = torch.tensor([label for _, label in items], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}

    return collate


def encode_labelled(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    labels: Sequence[str],
    label2id: dict[str, int],
    max_length: int,
) -> list[Item]:
    ids = tokenizer(
        list(texts), truncation=True, max_length=max_length, return_token_type_ids=False
    )["input_ids"]
    return [(row, label2id[label]) for row, label in zip(ids, labels, strict=True)]
