"""Text features: lowercasing, a tokenizer, a vocabulary fitted on the training rows, and
token ids padded to a fixed length.

Every step is one that standard ONNX operators reproduce exactly (``dlspec.onnx.text``
emits them), so the exported model takes the raw string:

- lowercasing is Unicode's simple (one code point to one code point) lowercase mapping,
  what ONNX's StringNormalizer does per code point: ``'ΣΑΣ'`` becomes ``'σασ'`` (no
  final-sigma rule) and ``'İ'`` becomes ``'i'`` (not ``'i̇'``);
- a tokenizer splits on ASCII separator characters and drops them (``whitespace``: space,
  tab, newline, carriage return, vertical tab, form feed; ``words``: those and ASCII
  punctuation), one StringSplit per separator in ONNX;
- the vocabulary orders tokens by count (descending), then by token (code points); id 0
  is padding and id 1 every token outside the vocabulary;
- a message keeps its first ``max_length`` tokens, padded with 0 on the right; its length
  is the number of real tokens (0 for an empty message).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from functools import cache, lru_cache

import numpy as np

PAD, UNKNOWN = "<pad>", "<unk>"
RESERVED = 2  # ids 0 (padding) and 1 (unknown)
WHITESPACE = " \t\n\r\v\f"
TOKENIZERS = {
    "whitespace": WHITESPACE,
    "words": WHITESPACE + string.punctuation,
}
TOKENIZER_HELP = {
    "whitespace": "split on ASCII whitespace (space, tab, newline, CR, VT, FF)",
    "words": "split on ASCII whitespace and ASCII punctuation, which are dropped",
}


@lru_cache(maxsize=1)
def _lower_table() -> dict[int, str]:
    table = {}
    for c in range(0x110000):
        ch = chr(c)
        low = ch.lower()
        if low != ch:
            # NOTE: U+0130 is the one code point whose full lowercase is two code points
            # ('i' + U+0307); its simple mapping, StringNormalizer's, is 'i'.
            table[c] = low if len(low) == 1 else low[0]
    return table


def lowercase(text: str) -> str:
    """Unicode's simple lowercase mapping, one code point at a time."""
    return text.translate(_lower_table())


@cache
def _splitter(separators: str) -> re.Pattern:
    return re.compile("[" + re.escape(separators) + "]+")


def tokenize(text: str, tokenizer: str, lower: bool = True) -> list[str]:
    """The tokens of one message (no empty tokens)."""
    if lower:
        text = lowercase(text)
    return [t for t in _splitter(TOKENIZERS[tokenizer]).split(text) if t]


@dataclass
class TextEncoder:
    """A fitted text feature: raw strings -> token ids (N, max_length) and lengths (N,).

    ``tokens`` is the vocabulary in id order from id 2 (ids 0 and 1 are padding and
    unknown), ``counts`` each token's count in the training rows."""

    lowercase: bool
    tokenizer: str
    max_length: int
    tokens: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    @classmethod
    def fit(cls, texts, *, lowercase: bool = True, tokenizer: str = "words",
            max_length: int = 50, max_size: int | None = None,
            min_count: int = 1) -> TextEncoder:
        """Count the tokens of ``texts`` (the training rows) and keep the vocabulary: tokens
        seen at least ``min_count`` times, the ``max_size`` most frequent (ties by token)."""
        counter: Counter = Counter()
        for text in texts:
            counter.update(tokenize(text, tokenizer, lowercase))
        kept = sorted(((-n, t) for t, n in counter.items() if n >= min_count))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(lowercase, tokenizer, max_length, [t for _, t in kept],
                   [-n for n, _ in kept])

    @property
    def vocab_size(self) -> int:
        """Rows of an embedding table over these ids (the two reserved ids included)."""
        return len(self.tokens) + RESERVED

    def lookup(self) -> dict[str, int]:
        return {t: i + RESERVED for i, t in enumerate(self.tokens)}

    def encode(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (N, max_length) int64, right-padded with 0, and lengths (N,) int64."""
        ids = np.zeros((len(texts), self.max_length), dtype=np.int64)
        lengths = np.zeros(len(texts), dtype=np.int64)
        lookup = self.lookup()
        for n, text in enumerate(texts):
            toks = tokenize(text, self.tokenizer, self.lowercase)[:self.max_length]
            ids[n, :len(toks)] = [lookup.get(t, 1) for t in toks]
            lengths[n] = len(toks)
        return ids, lengths

    # -- the run directory's readable vocabulary file and the lock's fingerprint --------
    def to_text(self) -> str:
        """``vocabulary.txt``: one line per id, ``id<TAB>token<TAB>count`` (tokens never
        hold ASCII whitespace, the separators of every tokenizer)."""
        lines = [f"0\t{PAD}\t0", f"1\t{UNKNOWN}\t0"]
        lines += [f"{i + RESERVED}\t{t}\t{n}"
                  for i, (t, n) in enumerate(zip(self.tokens, self.counts, strict=True))]
        return "\n".join(lines) + "\n"

    @staticmethod
    def parse_vocabulary(text: str) -> tuple[list[str], list[int]]:
        tokens, counts = [], []
        for k, line in enumerate(text.split("\n")[RESERVED:-1]):
            i, tok, n = line.split("\t")
            if int(i) != k + RESERVED:
                raise ValueError(f"vocabulary line {k + RESERVED + 1}: id {i}, expected "
                                 f"{k + RESERVED}")
            tokens.append(tok)
            counts.append(int(n))
        return tokens, counts

    def fingerprint(self) -> str:
        """SHA-256 of the settings and the vocabulary file, for the lock."""
        head = f"{self.lowercase}\t{self.tokenizer}\t{self.max_length}\n"
        return hashlib.sha256((head + self.to_text()).encode()).hexdigest()

    def to_dict(self) -> dict:
        return {"lowercase": self.lowercase, "tokenizer": self.tokenizer,
                "max_length": self.max_length, "tokens": list(self.tokens),
                "counts": list(self.counts), "sha256": self.fingerprint()}

    @classmethod
    def from_dict(cls, d: dict) -> TextEncoder:
        enc = cls(bool(d["lowercase"]), d["tokenizer"], int(d["max_length"]),
                  list(d["tokens"]), [int(n) for n in d["counts"]])
        if "sha256" in d and d["sha256"] != enc.fingerprint():
            raise ValueError("text vocabulary does not match its SHA-256")
        return enc
