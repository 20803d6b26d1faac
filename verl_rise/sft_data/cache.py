"""A resumable on-disk cache of chat-completion responses (SQLite), so a rerun never asks twice for what it has.

Key: SHA-256 over ``(model, prompt_id, sample index, params_hash)``, where ``params_hash`` covers the whole request
body (messages with their images, temperature, top_p, max_tokens, seed, extra fields): change any of them and the
request is a new one. Only successful responses are stored (the endpoint client never stores an answer without
text); failed requests are asked again on the next run.
Each :meth:`ResponseCache.put` commits at once, so an interrupted run keeps everything it received (SQLite's
journal makes each commit atomic).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    params_hash TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def params_hash(body: dict[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of a request body."""
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def cache_key(model: str, prompt_id: str, sample: int, phash: str) -> str:
    """The cache key of one request (hex SHA-256)."""
    return hashlib.sha256(f"{model}\0{prompt_id}\0{sample}\0{phash}".encode("utf-8")).hexdigest()


class ResponseCache:
    """SQLite-backed ``key -> response JSON`` store.

    Args:
        path: the database file (created with its directory).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key``, or None."""
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, *, model: str, prompt_id: str, sample: int, phash: str, response: dict[str, Any]) -> None:
        """Store (or replace) one response and commit."""
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, model, prompt_id, sample, phash, json.dumps(response, ensure_ascii=False), time.time()),
        )
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
