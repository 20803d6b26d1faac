"""Dense integer ids for prompt_id strings, built for millions of prompts in little memory.

A Python ``dict`` of one million 32-character ids costs about 150 MB and a per-record Python loop; here the
strings live once in Arrow arrays (about 36 bytes each), a 64-bit hash of each in a sorted numpy table, and a
second, independent 64-bit hash per id guards against collisions of the first: two different ids are merged
only if both hashes collide (about 1e-27 for a million ids); a collision of the first hash alone raises
:class:`PromptIdCollision`. A batch is mapped with vectorised numpy (hash, ``np.unique``, ``searchsorted``).

Why not a dict: at Metis-RISE's scale (10^3-10^5 prompts) a dict would do. ``python benchmarks/bench_passrate.py
--records 1000000 --prompts 100000`` measured the tracker at 0.21 M records/s and 143 MB peak RSS against 0.11 M
records/s and 159 MB for a dict of per-prompt counters (1.9x, on a loaded 2-core machine). The index earns its
keep at the scale the tracker is specified for (issue 5: >= 1 M records/s and < 300 MB for 10 M records over 1 M
prompts, reached at 2.0-2.7 M records/s and 234-240 MB), where a per-record Python loop is the bottleneck.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SEEDS = (
    # (length multiplier, round multiplier, final multiplier) of the two hash functions.
    (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)),
    (np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)),
)
_ID_POOL = pa.system_memory_pool()
_S31 = np.uint64(31)
_S29 = np.uint64(29)
# Rows per chunk in the padded path: bounds the temporary byte matrix to about 64 MB.
_PAD_MATRIX_BYTES = 64 << 20


class PromptIdCollision(RuntimeError):
    """Two different prompt_id strings have the same 64-bit hash (about 3e-8 for a million ids)."""


def _string_buffers(arr: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.empty(0, np.uint8)
    return offsets, data


def _mix_words(words: np.ndarray, lengths: np.ndarray, seed: int) -> np.ndarray:
    m_len, m_round, m_final = _SEEDS[seed]
    # Only a string's own words are folded in, so its hash does not depend on the batch's padding width.
    h = lengths.astype(np.uint64) * m_len
    n_words = (lengths + 7) // 8
    uniform = bool((n_words == words.shape[1]).all())
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            mixed = (h ^ words[:, j]) * m_round
            mixed ^= mixed >> _S31
            h = mixed if uniform else np.where(n_words > j, mixed, h)
        h *= m_final
        h ^= h >> _S29
    return h


def hash_strings(arr: pa.StringArray, seeds: tuple[int, ...] = (0,)) -> list[np.ndarray]:
    """64-bit hashes of each string's UTF-8 bytes, one array per seed.

    Method: the bytes are zero-padded to whole 8-byte words and folded word by word with a multiply/xor-shift
    round seeded by the byte length, then passed through a splitmix64-style finaliser (Steele et al., 2014);
    seed 1 uses other multipliers (MurmurHash3's fmix64 constants). Not cryptographic.

    Args:
        arr: Arrow string array of length ``n`` (no nulls).
        seeds: which of the two hash functions to compute (0 and/or 1).

    Returns:
        One uint64 array of shape ``(n,)`` per seed.
    """
    n = len(arr)
    if n == 0:
        return [np.empty(0, np.uint64) for _ in seeds]
    offsets, data = _string_buffers(arr)
    lengths = np.diff(offsets)
    max_len = int(lengths.max())
    width = max(8, (max_len + 7) // 8 * 8)
    base = int(offsets[0])
    if max_len == width and (lengths == max_len).all():
        # Fixed-width ids (e.g. 32 hex chars from data_prep): a zero-copy reshape, no padding needed.
        words = data[base : base + n * width].reshape(n, width).view(np.uint64)
        return [_mix_words(words, lengths, seed) for seed in seeds]
    out = [np.empty(n, np.uint64) for _ in seeds]
    rows_per_chunk = max(1, _PAD_MATRIX_BYTES // width)
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        lens = lengths[start:stop]
        lo, hi = int(offsets[start]), int(offsets[stop])
        mat = np.zeros((stop - start, width), np.uint8)
        row = np.repeat(np.arange(stop - start), lens)
        col = np.arange(hi - lo) - np.repeat(offsets[start:stop] - lo, lens)
        mat[row, col] = data[lo:hi]
        for o, seed in zip(out, seeds):
            o[start:stop] = _mix_words(mat.view(np.uint64), lens, seed)
    return out


class PromptIndex:
    """Bidirectional map prompt_id string <-> dense id ``0..len-1`` (first-seen order).

    Memory: about 36 bytes per prompt for the strings, 16 for the sorted hash table, 8 for the second hash.
    """

    def __init__(self) -> None:
        # The sorted (first hash -> dense id) table is kept as a large "main" part that is rebuilt rarely and a
        # small "delta" part that takes the new ids, merged when it reaches a quarter of main (an LSM-style
        # layout): inserting into one big sorted array per batch would copy it every time and fragment the heap.
        self._main_keys = np.empty(0, np.uint64)
        self._main_ids = np.empty(0, np.int32)
        self._delta_keys = np.empty(0, np.uint64)
        self._delta_ids = np.empty(0, np.int32)
        self._check = np.empty(1024, np.uint64)  # second hash by dense id (capacity grows)
        self._chunks: list[pa.StringArray] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @classmethod
    def from_strings(cls, strings: pa.StringArray) -> "PromptIndex":
        """Rebuild an index whose dense id ``i`` is ``strings[i]`` (e.g. from a saved snapshot).

        Raises:
            ValueError: ``strings`` holds a duplicate or a null (a corrupted snapshot).
        """
        index = cls()
        index.extend_distinct([strings])
        return index

    def extend_distinct(self, parts: Iterable[pa.StringArray]) -> None:
        """Append ids that must all be new and distinct; they get dense ids ``len(self)`` onwards, in order.

        Bulk path for rebuilding from a snapshot streamed in parts: each part is hashed and stored as it comes,
        and the hash table is sorted once at the end (no per-part merges), which is also where duplicates are
        detected.

        Raises:
            ValueError: a null, a duplicate or an id already known (a corrupted snapshot).
        """
        before = self._size
        key_parts = []
        for strings in parts:
            if strings.null_count:
                raise ValueError("prompt index: null prompt_id in saved state")
            n = len(strings)
            if n == 0:
                continue
            self._reserve(self._size + n)
            key, check = hash_strings(strings, seeds=(0, 1))
            key_parts.append(key)
            self._check[self._size : self._size + n] = check
            self._chunks.append(pc.take(strings, pa.array(np.arange(n)), memory_pool=_ID_POOL))
            self._size += n
        if not key_parts:
            return
        all_keys = np.concatenate([self._main_keys, self._delta_keys, *key_parts])
        del key_parts
        new_ids = np.arange(before, self._size, dtype=np.int32)
        all_ids = np.concatenate([self._main_ids, self._delta_ids, new_ids])
        order = np.argsort(all_keys)
        all_keys, all_ids = all_keys[order], all_ids[order]
        if (all_keys[1:] == all_keys[:-1]).any():
            raise ValueError("prompt index: duplicate prompt_id in saved state (or a 64-bit hash collision)")
        self._main_keys, self._main_ids = all_keys, all_ids
        self._delta_keys, self._delta_ids = np.empty(0, np.uint64), np.empty(0, np.int32)

    def strings_chunked(self) -> pa.ChunkedArray:
        """All prompt ids by dense id, without joining the per-batch chunks (zero-copy)."""
        return pa.chunked_array(self._chunks, type=pa.string())

    def _reserve(self, n: int) -> None:
        if n > len(self._check):
            grown = np.empty(max(n, int(len(self._check) * 1.25)), np.uint64)
            grown[: self._size] = self._check[: self._size]
            self._check = grown

    def strings(self) -> pa.StringArray:
        """All prompt ids, element ``i`` being the id with dense id ``i``.

        The ids are stored as one chunk per batch that brought new ones; they are joined here, on demand
        (snapshots, exports), not on every batch, so ingestion never copies the whole id table.
        """
        if not self._chunks:
            return pa.array([], pa.string())
        if len(self._chunks) > 1:
            self._chunks = [pa.concat_arrays(self._chunks, memory_pool=_ID_POOL)]
        return self._chunks[0]

    def lookup(self, prompt_ids: pa.StringArray, *, add: bool) -> tuple[np.ndarray, np.ndarray]:
        """Dense ids of a batch of prompt ids.

        Args:
            prompt_ids: Arrow string array of length ``n``, no nulls.
            add: give unseen ids the next free dense ids (in order of first appearance); if False they map to -1.

        Returns:
            ``(unique_dense, codes)``: ``codes`` (int64, shape ``(n,)``) numbers the batch's ``k`` distinct ids
            ``0..k-1``, and ``unique_dense`` (int64, shape ``(k,)``) is the dense id of each (so
            ``unique_dense[codes]`` is the dense id of every record).

        Raises:
            PromptIdCollision: two different strings share the first hash.
        """
        n = len(prompt_ids)
        if n == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        key, check = hash_strings(prompt_ids, seeds=(0, 1))
        uniq, first, codes = np.unique(key, return_index=True, return_inverse=True)
        codes = codes.reshape(-1).astype(np.int64, copy=False)
        check_u = check[first]
        if len(uniq) < n and not np.array_equal(check, check_u[codes]):
            raise PromptIdCollision("two different prompt_id strings in one batch have the same 64-bit hash")
        dense = np.full(len(uniq), -1, np.int64)
        for keys, ids in ((self._main_keys, self._main_ids), (self._delta_keys, self._delta_ids)):
            if len(keys):
                pos = np.minimum(np.searchsorted(keys, uniq), len(keys) - 1)
                hit = keys[pos] == uniq
                dense[hit] = ids[pos[hit]]
        known = dense >= 0
        if known.any() and (self._check[dense[known]] != check_u[known]).any():
            raise PromptIdCollision("a prompt_id has the same 64-bit hash as a different known one")
        if add:
            new = np.flatnonzero(dense < 0)
            if len(new):
                new = new[np.argsort(first[new], kind="stable")]  # dense ids in order of first appearance
                m = len(new)
                new_ids = np.arange(self._size, self._size + m)
                dense[new] = new_ids
                self._add_keys(uniq[new], new_ids)
                self._reserve(self._size + m)
                self._check[self._size : self._size + m] = check_u[new]
                # The id table lives as long as the tracker: keep it on the system allocator, away from the
                # arena Arrow's default pool reuses for short-lived buffers (measured: ~40 MB less RSS at 1M ids).
                self._chunks.append(pc.take(prompt_ids, pa.array(first[new]), memory_pool=_ID_POOL))
                self._size += m
        return dense, codes

    def _add_keys(self, keys: np.ndarray, ids: np.ndarray) -> None:
        keys = np.concatenate([self._delta_keys, keys])
        ids = np.concatenate([self._delta_ids, ids.astype(np.int32)])
        if len(keys) > max(1 << 16, len(self._main_keys) // 4):
            keys = np.concatenate([self._main_keys, keys])
            ids = np.concatenate([self._main_ids, ids])
            order = np.argsort(keys)
            self._main_keys, self._main_ids = keys[order], ids[order]
            self._delta_keys, self._delta_ids = np.empty(0, np.uint64), np.empty(0, np.int32)
        else:
            order = np.argsort(keys)
            self._delta_keys, self._delta_ids = keys[order], ids[order]
