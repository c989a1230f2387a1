"""Frames of the strategy channel: a JSON header and raw numeric arrays, nothing executable.

The trusted process and the sandboxed strategy worker talk over the worker's stdin and stdout
with these frames. Each frame is two big-endian u32 lengths, a UTF-8 JSON header (with an
``arrays`` list of ``[dtype, count]``) and the arrays' bytes back to back. The reader accepts
only the plain numeric dtypes below and bounded sizes, so a hostile worker can send wrong
numbers at worst: never an object, a pickle, or a frame large enough to exhaust memory.

This module imports only the standard library and numpy: it is copied into the worker's
sandbox next to the worker itself.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO, Protocol

import numpy as np

#: dtypes a frame may carry: float64 prices and scores, int8 sides, uint32 reason codes.
DTYPES: dict[str, np.dtype] = {"<f8": np.dtype("<f8"), "|i1": np.dtype("|i1"), "<u4": np.dtype("<u4")}
MAX_HEADER = 4 * 1024 * 1024
MAX_BODY = 256 * 1024 * 1024
_LENGTHS = struct.Struct("!II")


class WireError(Exception):
    """A frame that breaks the channel's rules (the peer is faulty or hostile)."""


def write_frame(fh: BinaryIO, header: dict[str, Any], arrays: Sequence[np.ndarray] = ()) -> None:
    arrays = [np.ascontiguousarray(a) for a in arrays]
    for a in arrays:
        if a.dtype.str not in DTYPES:
            raise WireError(f"dtype {a.dtype.str} cannot travel on the strategy channel")
    head = json.dumps({**header, "arrays": [[a.dtype.str, int(a.size)] for a in arrays]}).encode()
    body = b"".join(a.tobytes() for a in arrays)
    fh.write(_LENGTHS.pack(len(head), len(body)) + head + body)
    fh.flush()


class Readable(Protocol):
    """What a frame is read from: a binary file, or the host's reader with a deadline."""

    def read(self, n: int, /) -> bytes: ...


def _read_exact(fh: Readable, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = fh.read(left)
        if not chunk:
            raise EOFError("the strategy channel closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fh: Readable) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The next frame's header and arrays; WireError when it breaks the rules, EOFError at the end."""
    head_len, body_len = _LENGTHS.unpack(_read_exact(fh, _LENGTHS.size))
    if head_len > MAX_HEADER or body_len > MAX_BODY:
        raise WireError(f"frame too large (header {head_len} B, body {body_len} B)")
    try:
        header = json.loads(_read_exact(fh, head_len))
    except ValueError as exc:
        raise WireError(f"unreadable frame header: {exc}") from None
    if not isinstance(header, dict):
        raise WireError("a frame header must be a JSON object")
    body = _read_exact(fh, body_len)
    return header, _arrays(header.get("arrays"), body)


def _arrays(spec: Any, body: bytes) -> list[np.ndarray]:
    if not isinstance(spec, list):
        raise WireError("frame header without an arrays list")
    out, offset = [], 0
    for item in spec:
        if not (isinstance(item, list) and len(item) == 2 and item[0] in DTYPES and type(item[1]) is int):
            raise WireError(f"bad array descriptor {str(item)[:80]}")
        dtype, count = DTYPES[item[0]], item[1]
        size = dtype.itemsize * count
        if count < 0 or offset + size > len(body):
            raise WireError("array sizes do not match the frame body")
        out.append(np.frombuffer(body, dtype=dtype, count=count, offset=offset))
        offset += size
    if offset != len(body):
        raise WireError("frame body longer than its arrays")
    return out


def encode_reasons(reasons: Any) -> tuple[list[str], np.ndarray]:
    """Per-bar reason strings as a table of distinct strings and one uint32 code per bar."""
    table: dict[str, int] = {}
    codes = np.fromiter((table.setdefault(str(r), len(table)) for r in reasons), dtype="<u4")
    return list(table), codes
