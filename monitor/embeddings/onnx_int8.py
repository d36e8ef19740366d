"""all-MiniLM-L6-v2 quantised to int8 on onnxruntime: MiniLM's vector space at ~6x the speed, no torch at run time.

:func:`build_int8_model` (``aifm encoder build --encoder minilm-int8``, or on first use)
exports the transformer of the pip-installed MiniLM to ONNX with torch's exporter and
quantises its weights to int8 with onnxruntime's dynamic quantisation; nothing is
downloaded. :class:`Int8Encoder` tokenizes with the same WordPiece tokenizer (the Rust
``tokenizers``), runs the session and mean-pools the last hidden states over the
attention mask, as sentence-transformers does for this model. Its vectors are close to
MiniLM's (mean cosine 0.95 to the fp32 ones, ``bench/bench_embeddings.py``), not equal:
the semantic cues' margins, chosen on fp32 vectors, are not used with it.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np

from monitor.embeddings.encoder import EncoderUnavailable, encoders_directory, finish_build, hub_offline, is_built, model_path, start_build

MAX_TOKENS = 128
FORMAT = "aifm.minilm-int8/1"


def default_directory() -> Path:
    """``minilm-int8`` under the encoders' folder (``$AIFM_ENCODER_DIR`` or ``~/.cache/aifm``)."""
    return encoders_directory() / "minilm-int8"


def built(directory: Path) -> bool:
    """Whether ``directory`` holds an int8 encoder of this format."""
    return is_built(directory, FORMAT, "model.int8.onnx")


def build_int8_model(directory: Path | None = None) -> Path:
    """Export the local MiniLM to ONNX and quantise it to int8 in ``directory``; needs torch and onnx (the embeddings extra)."""
    directory = Path(directory) if directory is not None else default_directory()
    source = model_path()
    hub_offline()
    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from transformers import AutoModel
    except ImportError:
        raise EncoderUnavailable("building the int8 encoder needs the embeddings extra (torch, onnx, onnxruntime)") from None

    class LastHidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    started = time.perf_counter()
    start_build(directory)
    fp32, int8 = directory / "model.fp32.onnx", directory / "model.int8.onnx"
    model = LastHidden(AutoModel.from_pretrained(source, local_files_only=True).eval())
    ids = torch.tensor([[101, 2019, 2742, 102]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on dynamic shapes, not the user's concern
        torch.onnx.export(
            model, (ids, torch.ones_like(ids)), str(fp32), input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "last_hidden_state")},
            opset_version=17, dynamo=False,
        )
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # quantize_dynamic advises pre-processing on the root logger
    try:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    fp32.unlink()
    return finish_build(directory, FORMAT, started, quantisation="dynamic int8 weights")


class Int8Encoder:
    """``encode`` returns float32 unit vectors, one row per text (384 dimensions, as MiniLM's)."""

    device = "cpu"

    def __init__(self, directory: Path | None = None, *, threads: int | None = None, build: bool = True):
        directory = Path(directory) if directory is not None else default_directory()
        if not built(directory):
            if not build:
                raise EncoderUnavailable(f"the int8 encoder is not built in {directory}: run `aifm encoder build --encoder minilm-int8`")
            build_int8_model(directory)
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError:
            raise EncoderUnavailable("the int8 encoder needs onnxruntime and tokenizers (the embeddings extra)") from None
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(directory / "model.int8.onnx"), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")
        self.seconds = 0.0
        self.sentences = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        started = time.perf_counter()
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out = (pooled / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        self.seconds += time.perf_counter() - started
        self.sentences += len(texts)
        return out
