"""How one partition's snapshot is laid out on the compacted state topic, within any record size limit.

A snapshot of any size is written as chunks of at most :data:`CHUNK_BYTES` under keys
``<topic>:<partition>/<slot>/<i>``, then a small manifest under ``<topic>:<partition>``
naming the slot, the chunk count and a digest of the whole. Two slots alternate: a
checkpoint writes the slot the current manifest does not name, so a crash between the
chunks and the manifest leaves the previous snapshot whole. A snapshot that fits in one
chunk travels inside its manifest. Compaction keeps the latest value of each key, so
the topic holds at most two snapshots per partition. I/O-free: the worker sends the
records and reads them back.
"""

from __future__ import annotations

import hashlib

import msgspec

#: Chunk size: far below Kafka's default 1 MB message limit, with room for key and headers.
CHUNK_BYTES = 500_000
_MAGIC = "aifm.state.manifest"


class Manifest(msgspec.Struct, frozen=True):
    format: str
    generation: int  # checkpoints written for this partition; its parity is the slot
    next_offset: int
    size: int
    digest: str
    chunks: int  # 0: the snapshot is inline
    inline: bytes | None = None


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def manifest_key(topic: str, partition: int) -> bytes:
    return f"{topic}:{partition}".encode()


def chunk_key(topic: str, partition: int, slot: int, index: int) -> bytes:
    return f"{topic}:{partition}/{slot}/{index}".encode()


def snapshot_records(topic: str, partition: int, generation: int, next_offset: int, data: bytes) -> list[tuple[bytes, bytes]]:
    """(key, value) records of one snapshot, manifest last: send them in this order to one state partition."""
    digest = _digest(data)
    if len(data) <= CHUNK_BYTES:
        manifest = Manifest(_MAGIC, generation, next_offset, len(data), digest, 0, data)
        return [(manifest_key(topic, partition), msgspec.msgpack.encode(manifest))]
    slot = generation % 2
    chunks = [data[start : start + CHUNK_BYTES] for start in range(0, len(data), CHUNK_BYTES)]
    records = [(chunk_key(topic, partition, slot, i), chunk) for i, chunk in enumerate(chunks)]
    manifest = Manifest(_MAGIC, generation, next_offset, len(data), digest, len(chunks))
    records.append((manifest_key(topic, partition), msgspec.msgpack.encode(manifest)))
    return records


class StoredSnapshot(msgspec.Struct, frozen=True):
    """A partition's snapshot as read back: its bytes and where it left off, or why it cannot be used."""

    data: bytes | None
    generation: int = 0
    next_offset: int = 0
    problem: str | None = None  # set when the records are unreadable: the partition starts fresh


def assemble(topic: str, partition: int, latest: dict[bytes, bytes]) -> StoredSnapshot | None:
    """The partition's snapshot from the latest value of each key on its state partition; None if it has none."""
    raw = latest.get(manifest_key(topic, partition))
    if raw is None:
        return None
    try:
        manifest = msgspec.msgpack.decode(raw, type=Manifest)
    except (msgspec.DecodeError, RecursionError):
        return StoredSnapshot(None, problem="the manifest is not readable (an older snapshot format, or corrupt)")
    if manifest.format != _MAGIC:
        return StoredSnapshot(None, problem="the manifest is not an aifm manifest")
    if manifest.chunks == 0:
        data = manifest.inline or b""
    else:
        slot = manifest.generation % 2
        parts = [latest.get(chunk_key(topic, partition, slot, i)) for i in range(manifest.chunks)]
        if any(part is None for part in parts):
            return StoredSnapshot(None, problem=f"{sum(p is None for p in parts)} of {manifest.chunks} chunks missing")
        data = b"".join(parts)
    if len(data) != manifest.size or _digest(data) != manifest.digest:
        return StoredSnapshot(None, problem="the chunks do not match the manifest's digest")
    return StoredSnapshot(data, manifest.generation, manifest.next_offset)
