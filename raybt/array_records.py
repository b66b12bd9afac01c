"""Named NumPy arrays as one hashed record of bytes: a JSON header and the arrays' raw bytes. No pickle.

A record is::

    prefix   8-byte magic, header length, payload length (little-endian
             uint64 each), SHA-256 of header + payload (32 bytes)
    header   UTF-8 JSON: {"meta": {...}, "arrays": [[name, dtype, shape], ...]}
    payload  every array's bytes (C order), one after another

Reading checks the lengths against the bytes at hand and the digest *before*
parsing the header, then builds each array with ``np.frombuffer`` from a
data type that is either a plain number/text type (``"<f8"``, ``"<U16"``,
...) or one of the record types the caller names. Nothing in a record can
run code, and a record cut short (a kill during an append) is told apart
from a damaged one.

It is what an uncompressed ``.npz`` holds, without the zip container's cost
per array (tens of microseconds each), so a checkpoint of a few dozen small
arrays costs microseconds of the interpreter's time, not milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct

import numpy as np

MAGIC = b"RAYBTAR1"
PREFIX = struct.Struct("<8sQQ32s")
_PLAIN_DTYPE = re.compile(r"[<>|=][biufU][0-9]{1,3}")


class RecordError(ValueError):
    """A record that is not whole, or not what it says (the message says which)."""


class ShortRecord(RecordError):
    """The bytes end inside the record (it was being written when the process stopped)."""


def pack(meta: dict, arrays: dict, record_dtypes: dict) -> bytes:
    """One record holding ``meta`` (JSON-able) and ``arrays``; record types are written by their name in
    ``record_dtypes`` (name -> dtype), every other array must be of a plain number or text type."""
    names = {dtype: name for name, dtype in record_dtypes.items()}
    entries, parts = [], []
    for key, value in arrays.items():
        value = np.asarray(value, order="C")  # (not ascontiguousarray: it makes scalars 1-d)
        code = names.get(value.dtype, value.dtype.str)
        if code not in record_dtypes and not _PLAIN_DTYPE.fullmatch(code):
            raise TypeError(f"{key}: cannot store arrays of type {value.dtype}")
        entries.append([key, code, list(value.shape)])
        parts.append(value.reshape(-1).view(np.uint8))
    header = json.dumps({"meta": meta, "arrays": entries}, separators=(",", ":")).encode()
    body = b"".join([header, *parts])
    return PREFIX.pack(MAGIC, len(header), len(body) - len(header), hashlib.sha256(body).digest()) + body


def unpack(buffer, offset: int, record_dtypes: dict) -> tuple[dict, dict, int]:
    """``(meta, arrays, end)`` of the record starting at ``offset`` of ``buffer`` (a ``bytearray``: the
    arrays are writable views into it). Raises :class:`ShortRecord` when the bytes end inside it and
    :class:`RecordError` when it is damaged or malformed."""
    if len(buffer) - offset < PREFIX.size:
        raise ShortRecord("the record is cut short")
    magic, header_len, payload_len, digest = PREFIX.unpack_from(buffer, offset)
    if magic != MAGIC:
        raise RecordError("not a raybt array record")
    start = offset + PREFIX.size
    end = start + header_len + payload_len
    if end > len(buffer):
        raise ShortRecord("the record is cut short")
    body = memoryview(buffer)[start:end]
    if hashlib.sha256(body).digest() != digest:
        raise RecordError("damaged (SHA-256 differs)")
    try:
        header = json.loads(bytes(body[:header_len]).decode("utf-8"))
        meta, entries = header["meta"], header["arrays"]
        if not isinstance(meta, dict) or not isinstance(entries, list):
            raise TypeError
    except (ValueError, TypeError, KeyError):
        raise RecordError("malformed header") from None
    arrays, at = {}, start + header_len
    for entry in entries:
        key, dtype, shape = _checked_entry(entry, record_dtypes)
        count = int(np.prod(shape, dtype=np.int64))
        if at + count * dtype.itemsize > end:
            raise RecordError(f"{key}: the array runs past the record")
        arrays[key] = np.frombuffer(buffer, dtype=dtype, count=count, offset=at).reshape(shape)
        at += count * dtype.itemsize
    if at != end:
        raise RecordError("the arrays do not fill the record")
    return meta, arrays, end


def _checked_entry(entry, record_dtypes: dict) -> tuple[str, np.dtype, tuple]:
    ok = (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and isinstance(entry[1], str)
          and isinstance(entry[2], list) and all(isinstance(n, int) and 0 <= n < 2 ** 40 for n in entry[2]))
    if not ok:
        raise RecordError("malformed array entry")
    key, code, shape = entry
    if code in record_dtypes:
        return key, np.dtype(record_dtypes[code]), tuple(shape)
    if not _PLAIN_DTYPE.fullmatch(code):
        raise RecordError(f"{key}: unexpected data type {code!r}")
    return key, np.dtype(code), tuple(shape)
