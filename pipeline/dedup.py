"""Duplicates: exact copies (content hash) and near-copies (MinHash + LSH).

Two pages are *duplicates* when one is a copy of the other: a syndicated dispatch
re-published by another outlet, the same page under two URLs, or an update of an
article (a paragraph added, a typo fixed). Two outlets reporting the same event in
their own words are *not* duplicates; they are folded into one story by
`pipeline.stories`.

Two ways to look copies up, one rule. `DuplicateIndex` keeps signatures in memory
(benchmarks, tests); the crawl keeps the LSH bands in the database instead
(`band_keys`, `storage.duplicates`), so a crawl reads only the candidates of the pages
it stores, never the whole window: the same bands as the in-memory index (25 bands of
5 hash values, datasketch's optimum for `CANDIDATE_THRESHOLD`), the same acceptance
(`best_copy`). `content_hash` is a hex string and a `Signature` serialises to a few
hundred bytes with `signature_bytes` / `signature_from_bytes`.

Matching rule. Candidates come from MinHash-LSH tuned for a Jaccard of
`CANDIDATE_THRESHOLD` over word 5-gram shingles; a candidate is accepted when the
estimated Jaccard reaches `threshold` (0.8), or when the estimated containment of
the smaller text in the larger reaches `containment` (0.9). The second rule is
what catches the update of a short article: a 150-word brief that gains a
60-word paragraph keeps a Jaccard of ~0.7 with its first version, but all of the
first version is contained in the second. Containment is derived from the
estimated Jaccard and the two shingle counts stored with each signature.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from veille.pipeline.normalize import tokens

if TYPE_CHECKING:
    from datasketch import MinHash

# datasketch is imported where it is used: its LSH module pulls in scipy (~0.5 s), which
# a re-crawl that stores nothing new should not pay for.

SHINGLE_SIZE = 5
NUM_PERM = 128
THRESHOLD = 0.8
CONTAINMENT = 0.9
CANDIDATE_THRESHOLD = 0.5
MIN_SHINGLES_FOR_CONTAINMENT = 30  # below this a "contained" text is too short to call a copy

BANDS, ROWS = 25, 5  # LSH bands x hash values per band: MinHashLSH(0.5, 128)'s own choice

_SEED = 1
_SCHEME = "affine32"  # pinned: stored signatures must stay comparable across datasketch upgrades
_MAGIC = b"VMH1"
_HEADER = struct.Struct("<4sII")  # magic, num_perm, shingle count


@dataclass(frozen=True, eq=False)
class Signature:
    """A MinHash of a text's shingles, plus how many distinct shingles it had."""

    hashvalues: np.ndarray  # uint64[num_perm]
    size: int

    @property
    def num_perm(self) -> int:
        return int(self.hashvalues.shape[0])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Signature)
            and self.size == other.size
            and np.array_equal(self.hashvalues, other.hashvalues)
        )

    def __hash__(self) -> int:
        return hash((self.size, self.hashvalues.tobytes()))


def content_hash(text: str, toks: list[str] | None = None) -> str:
    """SHA-256 (hex) of the normalised token stream: equal for copies that differ only
    in case, accents, Arabic spelling variants, punctuation or whitespace. `toks`:
    ``tokens(text)`` when the caller has them (tokenising costs more than hashing)."""
    canonical = " ".join(tokens(text) if toks is None else toks)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def shingles(text: str, size: int = SHINGLE_SIZE, toks: list[str] | None = None) -> set[bytes]:
    """Distinct word n-grams of the normalised tokens (the whole text if shorter); `toks`
    as for `content_hash`."""
    toks = tokens(text) if toks is None else toks
    if not toks:
        return set()
    if len(toks) <= size:
        return {" ".join(toks).encode("utf-8")}
    return {" ".join(toks[i : i + size]).encode("utf-8") for i in range(len(toks) - size + 1)}


def minhash(text: str, num_perm: int = NUM_PERM, toks: list[str] | None = None) -> Signature:
    """The signature of a text, to store with the article and to query a DuplicateIndex;
    `toks` as for `content_hash`."""
    sh = shingles(text, toks=toks)
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=_SEED, scheme=_SCHEME, permutations=_permutations(num_perm))
    if sh:
        m.update_batch(list(sh))
    return Signature(np.asarray(m.hashvalues, dtype=np.uint64), len(sh))


def signature_bytes(sig: Signature) -> bytes:
    """Serialise a signature (header + little-endian uint64 hash values)."""
    header = _HEADER.pack(_MAGIC, sig.num_perm, sig.size)
    return header + sig.hashvalues.astype("<u8").tobytes()


def signature_from_bytes(data: bytes) -> Signature:
    """Inverse of `signature_bytes`. Raises ValueError on bytes it did not produce."""
    if len(data) < _HEADER.size:
        raise ValueError("signature too short")
    magic, num_perm, size = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError(f"not a veille MinHash signature (magic {magic!r})")
    body = data[_HEADER.size :]
    if len(body) != 8 * num_perm:
        raise ValueError(f"signature body has {len(body)} bytes, expected {8 * num_perm}")
    values = np.frombuffer(body, dtype="<u8").astype(np.uint64)
    return Signature(values, size)


def jaccard(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity of the two shingle sets."""
    if a.num_perm != b.num_perm:
        raise ValueError(f"signatures of different sizes ({a.num_perm} and {b.num_perm})")
    if a.size == 0 or b.size == 0:
        return 0.0
    return float(np.count_nonzero(a.hashvalues == b.hashvalues)) / a.num_perm


def containment(a: Signature, b: Signature, j: float | None = None) -> float:
    """Estimated share of the smaller shingle set found in the larger one.

    From |A∩B| = J·(|A|+|B|)/(1+J); clipped to [0, 1].
    """
    if j is None:
        j = jaccard(a, b)
    small = min(a.size, b.size)
    if small == 0:
        return 0.0
    inter = j * (a.size + b.size) / (1.0 + j)
    return min(1.0, inter / small)


def is_copy(a: Signature, b: Signature, j: float, threshold: float = THRESHOLD,
            contained: float | None = CONTAINMENT) -> bool:
    """The matching rule (module doc): Jaccard `j` reaches `threshold`, or the smaller
    text (long enough) is contained in the larger."""
    if j >= threshold:
        return True
    if contained is None or min(a.size, b.size) < MIN_SHINGLES_FOR_CONTAINMENT:
        return False
    return containment(a, b, j) >= contained


def band_keys(sig: Signature) -> list[int]:
    """The signature's LSH bands as signed 64-bit keys (one per band, the band's number
    mixed in): two texts are candidates when they share a key. None for an empty text,
    which matches nothing (and would otherwise share every band with every empty text)."""
    if sig.size == 0:
        return []
    return list(_band_keys(sig.hashvalues.astype("<u8").tobytes()))


@functools.lru_cache(maxsize=64)
def _band_keys(raw: bytes) -> tuple[int, ...]:
    """`band_keys` of a signature's bytes, kept for the last few: storing a page asks for
    them to look its candidates up and again to index it."""
    width = 8 * ROWS
    return tuple(
        int.from_bytes(hashlib.blake2b(bytes((band,)) + raw[band * width:(band + 1) * width],
                                       digest_size=8).digest(), "little", signed=True)
        for band in range(BANDS)
    )


def best_copy(sig: Signature, stored: Iterable[tuple[int, bytes]]) -> int | None:
    """Of the candidates (article id, stored signature bytes), the best copy of this text
    by estimated Jaccard (ties to the smaller key as text, like `DuplicateIndex.find`)."""
    if sig.size == 0:
        return None
    best: tuple[float, str, int] | None = None
    for key, data in stored:
        other = signature_from_bytes(data)
        if other.num_perm != sig.num_perm:
            continue
        j = jaccard(sig, other)
        if is_copy(sig, other, j) and (best is None or (-j, str(key)) < (-best[0], best[1])):
            best = (j, str(key), key)
    return None if best is None else best[2]


class DuplicateIndex:
    """Near-duplicate lookup over stored signatures; sub-linear per query (LSH buckets).

    Args:
        threshold: estimated Jaccard from which two texts are copies.
        containment: estimated containment of the smaller text in the larger from which
            they are copies (an update of the same article); None disables the rule.
        num_perm: must match the signatures added.
    """

    def __init__(
        self,
        threshold: float = THRESHOLD,
        containment: float | None = CONTAINMENT,
        num_perm: int = NUM_PERM,
    ) -> None:
        self.threshold = threshold
        self.containment = containment
        self.num_perm = num_perm
        cand = min(threshold, CANDIDATE_THRESHOLD) if containment is not None else threshold
        from datasketch import MinHashLSH

        self._lsh = MinHashLSH(threshold=cand, num_perm=num_perm)
        self._sigs: dict[str, Signature] = {}
        self.comparisons = 0  # candidate verifications so far (for benchmarks and tests)

    def __len__(self) -> int:
        return len(self._sigs)

    def __contains__(self, key: object) -> bool:
        return key in self._sigs

    def add(self, key: str, signature: Signature | bytes) -> None:
        """Index a stored article's signature under `key` (re-adding a key replaces it)."""
        sig = _coerce(signature)
        if sig.num_perm != self.num_perm:
            raise ValueError(f"signature has {sig.num_perm} permutations, index {self.num_perm}")
        if key in self._sigs:
            self._lsh.remove(key)
        self._sigs[key] = sig
        self._lsh.insert(key, _as_minhash(sig))

    def add_many(self, items: Iterable[tuple[str, Signature | bytes]]) -> None:
        for key, sig in items:
            self.add(key, sig)

    def find(self, signature: Signature | bytes) -> str | None:
        """The key of the best stored copy of this text (highest estimated Jaccard), or None."""
        best = self.candidates(signature)
        return best[0][0] if best else None

    def candidates(self, signature: Signature | bytes) -> list[tuple[str, float]]:
        """Every accepted copy with its estimated Jaccard, best first."""
        sig = _coerce(signature)
        if sig.size == 0:
            return []
        out: list[tuple[str, float]] = []
        for key in self._lsh.query(_as_minhash(sig)):
            other = self._sigs[key]
            self.comparisons += 1
            j = jaccard(sig, other)
            if is_copy(sig, other, j, self.threshold, self.containment):
                out.append((key, j))
        out.sort(key=lambda kv: (-kv[1], kv[0]))
        return out


def _coerce(signature: Signature | bytes) -> Signature:
    if isinstance(signature, Signature):
        return signature
    if isinstance(signature, bytes | bytearray | memoryview):
        return signature_from_bytes(bytes(signature))
    raise TypeError(f"expected a Signature or bytes, got {type(signature).__name__}")


def _as_minhash(sig: Signature) -> MinHash:
    from datasketch import MinHash

    return MinHash(seed=_SEED, hashvalues=sig.hashvalues, scheme=_SCHEME,
                   permutations=_permutations(sig.num_perm))


@functools.cache
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """The permutations of the pinned seed and scheme, drawn once per process instead of
    once per signature (half a millisecond each)."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=_SEED, scheme=_SCHEME).permutations
    return a, b
