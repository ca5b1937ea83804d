"""Answers to unsaved documents, kept in memory: the same document evaluated again is not recomputed.

The dashboard sends the same documents again and again: an example opened, a tab revisited, an edit
undone, a shared link opened by many. A saved scenario's result is cached in the store
(dse.services.evaluation.cached_evaluation); this cache holds the encoded answers of `POST /evaluate`
for documents evaluated in the server's own process (cheap and medium work), keyed by a hash of the
document's canonical JSON, its kind's engine version, the result format and the studies asked for. It
is bounded in bytes and forgets the least recently used answer first. Heavy work (plan searches,
serving simulations) runs in worker processes and is not kept here.

Per server process, like the pools (README, "Several server processes").
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence

from pydantic import BaseModel

from dse.scenarios.base import RESULT_FORMAT
from dse.scenarios.documents import document_json, kind_of

__all__ = ["AnswerCache"]


class AnswerCache:
    """Encoded answers by document, at most `max_bytes` of them (0: nothing is kept). Thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._answers: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(document: BaseModel, include: Sequence[str]) -> str:
        """What an answer depends on: the whole document, its engine's version, the result's format and
        the deferred studies asked for (in the order given: the answer lists them so)."""
        kind = kind_of(document)
        content = json.dumps(document_json(document), sort_keys=True, separators=(",", ":"), allow_nan=False)
        stamp = f"{kind.engine_version}|{RESULT_FORMAT}|{','.join(include)}|"
        return hashlib.sha256((stamp + content).encode("utf-8")).hexdigest()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: str, answer: bytes) -> None:
        """Keeps `answer`, forgetting the least recently used ones beyond `max_bytes`; an answer larger
        than a quarter of the budget is not kept (one answer never empties the cache)."""
        if len(answer) > self.max_bytes // 4:
            return
        with self._lock:
            previous = self._answers.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous)
            self._answers[key] = answer
            self._bytes += len(answer)
            while self._bytes > self.max_bytes:
                _, dropped = self._answers.popitem(last=False)
                self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def bytes(self) -> int:
        return self._bytes
