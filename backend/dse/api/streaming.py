"""Large JSON answers encoded piece by piece in worker threads, so the event loop never stalls.

A sweep of MAX_SWEEP_POINTS points answers tens of MB of JSON. Encoded in one call (FastAPI's
response serialisation runs on the event loop, in C code that holds the GIL throughout), it
stopped every other request, a health check included, for 0.2 s and more. Streamed, each piece is
one short encoder call (a few thousand numbers), Starlette pulls the pieces from a worker thread,
and other requests run in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from pydantic_core import to_json

#: Numbers encoded per json.dumps call (a few ms each).
ITEMS_PER_PIECE = 4096


def _encode(value: Any) -> str:
    """Compact JSON of plain values, in pydantic-core's encoder (several times json's speed)."""
    return to_json(value, inf_nan_mode="null").decode("utf-8")


#: Bytes gathered before a chunk is handed to the server (fewer thread hops than one per piece).
CHUNK_BYTES = 256 * 1024


def json_pieces(value: Any) -> Iterator[str]:
    """The JSON text of `value` (models, dicts, lists and scalars; no NaN), as short pieces.

    A pydantic model is taken field by field, without aliases or custom serializers: meant for
    plain result models such as SweepResult.
    """
    if isinstance(value, BaseModel):
        value = {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("," if index else "") + _encode(str(key)) + ":"
            yield from json_pieces(item)
        yield "}"
    elif isinstance(value, list | tuple) and value and isinstance(value[0], list | tuple | dict | BaseModel):
        first = value[0]
        yield "["
        if isinstance(first, list | tuple) and not any(isinstance(x, list | tuple | dict) for x in first):
            # A grid: whole rows per call, about ITEMS_PER_PIECE numbers each.
            step = max(1, ITEMS_PER_PIECE // max(1, len(first)))
            for start in range(0, len(value), step):
                yield ("," if start else "") + _encode(list(value[start : start + step]))[1:-1]
        else:
            for index, item in enumerate(value):
                if index:
                    yield ","
                yield from json_pieces(item)
        yield "]"
    elif isinstance(value, list | tuple) and len(value) > ITEMS_PER_PIECE:
        yield "["
        for start in range(0, len(value), ITEMS_PER_PIECE):
            # Each slice without its brackets, joined by commas.
            yield ("," if start else "") + _encode(list(value[start : start + ITEMS_PER_PIECE]))[1:-1]
        yield "]"
    else:
        yield _encode(value)


def _chunks(value: Any) -> Iterator[bytes]:
    buffer: list[str] = []
    size = 0
    for piece in json_pieces(value):
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


def streamed_json(value: Any, status_code: int = 200) -> StreamingResponse:
    """A JSON response encoded lazily from a sync iterator (Starlette runs it in its threadpool)."""
    return StreamingResponse(_chunks(value), status_code=status_code, media_type="application/json")
