"""Dense integer ids for prompt_id strings, built for millions of prompts in little memory.

A Python ``dict`` of one million 32-character ids costs about 150 MB and a per-record Python loop; here the
strings live once in an Arrow array (about 36 bytes each), their 64-bit hashes in a sorted numpy array, and a
batch is mapped with vectorised numpy (hash, ``pandas.factorize``, ``searchsorted``). Hash collisions are never
silent: every lookup compares the strings themselves and raises :class:`PromptIdCollision` on a mismatch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_M0 = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S31 = np.uint64(31)
_S29 = np.uint64(29)
# Rows per chunk in the padded path: bounds the temporary byte matrix to about 64 MB.
_PAD_MATRIX_BYTES = 64 << 20


class PromptIdCollision(RuntimeError):
    """Two different prompt_id strings have the same 64-bit hash (about 1e-8 for a million ids)."""


def _string_buffers(arr: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.empty(0, np.uint8)
    return offsets, data


def _mix_words(words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    # Only a string's own words are folded in, so its hash does not depend on the batch's padding width.
    h = lengths.astype(np.uint64) * _M0
    n_words = (lengths + 7) // 8
    uniform = bool((n_words == words.shape[1]).all())
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            mixed = (h ^ words[:, j]) * _M1
            mixed ^= mixed >> _S31
            h = mixed if uniform else np.where(n_words > j, mixed, h)
        h *= _M2
        h ^= h >> _S29
    return h


def hash_strings(arr: pa.StringArray) -> np.ndarray:
    """64-bit hash of each string's UTF-8 bytes.

    Method: the bytes are zero-padded to whole 8-byte words and folded word by word with a multiply/xor-shift
    round seeded by the byte length, then passed through the splitmix64 finaliser (Steele et al., 2014). Not
    cryptographic; callers must compare strings to rule out collisions (:class:`PromptIndex` does).

    Args:
        arr: Arrow string array of length ``n`` (no nulls).

    Returns:
        uint64 array of shape ``(n,)``.
    """
    n = len(arr)
    if n == 0:
        return np.empty(0, np.uint64)
    offsets, data = _string_buffers(arr)
    lengths = np.diff(offsets)
    max_len = int(lengths.max())
    width = max(8, (max_len + 7) // 8 * 8)
    base = int(offsets[0])
    if max_len == width and (lengths == max_len).all():
        # Fixed-width ids (e.g. 32 hex chars from data_prep): a zero-copy reshape, no padding needed.
        mat = data[base : base + n * width].reshape(n, width)
        return _mix_words(mat.view(np.uint64), lengths)
    out = np.empty(n, np.uint64)
    rows_per_chunk = max(1, _PAD_MATRIX_BYTES // width)
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        lens = lengths[start:stop]
        lo, hi = int(offsets[start]), int(offsets[stop])
        mat = np.zeros((stop - start, width), np.uint8)
        row = np.repeat(np.arange(stop - start), lens)
        col = np.arange(hi - lo) - np.repeat(offsets[start:stop] - lo, lens)
        mat[row, col] = data[lo:hi]
        out[start:stop] = _mix_words(mat.view(np.uint64), lens)
    return out


class PromptIndex:
    """Bidirectional map prompt_id string <-> dense id ``0..len-1`` (first-seen order).

    Memory: about 36 bytes per prompt for the strings plus 16 bytes for the sorted hash table.
    """

    def __init__(self) -> None:
        self._keys = np.empty(0, np.uint64)  # sorted hashes
        self._ids = np.empty(0, np.int64)  # dense id of each entry of _keys
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
        if len(strings) == 0:
            return index
        if strings.null_count:
            raise ValueError("prompt index: null prompt_id in saved state")
        dense, _ = index.lookup(strings, add=True)
        if index._size != len(strings) or not np.array_equal(dense, np.arange(len(strings))):
            raise ValueError("prompt index: duplicate prompt_id in saved state")
        return index

    def strings(self) -> pa.StringArray:
        """All prompt ids, element ``i`` being the id with dense id ``i``."""
        if not self._chunks:
            return pa.array([], pa.string())
        if len(self._chunks) > 1:
            self._chunks = [pa.concat_arrays(self._chunks)]
        return self._chunks[0]

    def lookup(self, prompt_ids: pa.StringArray, *, add: bool) -> tuple[np.ndarray, np.ndarray]:
        """Dense ids of a batch of prompt ids.

        Args:
            prompt_ids: Arrow string array of length ``n``, no nulls.
            add: give unseen ids the next free dense ids; if False they map to -1.

        Returns:
            ``(unique_dense, codes)``: ``codes`` (int64, shape ``(n,)``) numbers the batch's distinct ids
            ``0..k-1`` in first-seen order, and ``unique_dense`` (int64, shape ``(k,)``) is the dense id of
            each (so ``unique_dense[codes]`` is the dense id of every record).

        Raises:
            PromptIdCollision: two different strings share a hash.
        """
        n = len(prompt_ids)
        if n == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        hashes = hash_strings(prompt_ids)
        codes, uniq = pd.factorize(hashes)
        codes = codes.astype(np.int64, copy=False)
        k = len(uniq)
        first = np.empty(k, np.int64)
        first[codes[::-1]] = np.arange(n - 1, -1, -1)
        reps = prompt_ids.take(pa.array(first))
        if k < n and not pc.all(pc.equal(prompt_ids, reps.take(pa.array(codes)))).as_py():
            raise PromptIdCollision("two different prompt_id strings in one batch have the same 64-bit hash")

        dense = np.full(k, -1, np.int64)
        order = np.argsort(uniq, kind="stable")
        sorted_uniq = uniq[order]
        if self._size:
            pos = np.searchsorted(self._keys, sorted_uniq)
            pos_c = np.minimum(pos, len(self._keys) - 1)
            hit = self._keys[pos_c] == sorted_uniq
            dense[order[hit]] = self._ids[pos_c[hit]]
            found = dense >= 0
            if found.any():
                stored = self.strings().take(pa.array(dense[found]))
                if not pc.all(pc.equal(stored, reps.filter(pa.array(found)))).as_py():
                    raise PromptIdCollision("a new prompt_id has the same 64-bit hash as a known one")
        if add:
            new_sorted = dense[order] < 0
            m = int(new_sorted.sum())
            if m:
                new_keys = sorted_uniq[new_sorted]
                new_pos_in_batch = order[new_sorted]
                # Dense ids follow first-seen order within the batch, not hash order.
                rank = np.empty(m, np.int64)
                rank[np.argsort(new_pos_in_batch, kind="stable")] = np.arange(m)
                new_ids = self._size + rank
                ins = np.searchsorted(self._keys, new_keys)
                self._keys = np.insert(self._keys, ins, new_keys)
                self._ids = np.insert(self._ids, ins, new_ids)
                dense[new_pos_in_batch] = new_ids
                self._chunks.append(reps.take(pa.array(np.sort(new_pos_in_batch))))
                self._size += m
        return dense, codes
