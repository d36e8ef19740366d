"""The snapshot format: detector and session state as data, never as code.

A snapshot is a zlib-compressed MessagePack document ``{"format", "version",
"thresholds", "state"}`` whose state holds only numbers, strings, bytes, lists and
maps. Decoding it builds no object of any class, so a crafted record on the state
topic can at worst be discarded: unlike a pickle, it cannot run code in the worker.
Each stateful class writes its own ``state()`` and reads it back with ``load_state()``,
checking types as it goes; anything unexpected raises, and the caller starts fresh.
"""

from __future__ import annotations

import zlib

import msgspec

FORMAT = "aifm.pipeline"
VERSION = 2

#: The most a snapshot may inflate to when decoded: a crafted zlib bomb stops here.
MAX_DECODED_BYTES = 256 * 1024 * 1024


class SnapshotError(ValueError):
    """Bytes that are not a snapshot of this format and version (corrupt, crafted, or an older format)."""


def encode_snapshot(fingerprint: str, state: dict) -> bytes:
    document = {"format": FORMAT, "version": VERSION, "thresholds": fingerprint, "state": state}
    return zlib.compress(msgspec.msgpack.encode(document), 1)


def decode_snapshot(data: bytes) -> tuple[str, dict]:
    """(thresholds fingerprint, state) of a snapshot; raises :class:`SnapshotError` for anything else."""
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(data, MAX_DECODED_BYTES)
        if inflater.unconsumed_tail:
            raise SnapshotError(f"inflates past {MAX_DECODED_BYTES} bytes")
        document = msgspec.msgpack.decode(raw)
    except (zlib.error, msgspec.DecodeError, RecursionError) as error:
        raise SnapshotError(f"not a snapshot ({type(error).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError("not an aifm snapshot")
    if document.get("version") != VERSION:
        raise SnapshotError(f"snapshot version {document.get('version')!r}, this worker reads {VERSION}")
    fingerprint, state = document.get("thresholds"), document.get("state")
    if not isinstance(fingerprint, str) or not isinstance(state, dict):
        raise SnapshotError("snapshot without thresholds or state")
    return fingerprint, state
