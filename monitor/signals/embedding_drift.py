"""Embedding drift: what a model says moving away from what it said in its reference period.

Proxies a silent change in output content (a model update, a new user population, a
prompt change) that no error or latency shows: every request still returns 200. The
input is the output's sentence embedding, either precomputed by the producer (the
event's ``embedding``) or computed by the worker for a bounded sample of outputs
(:mod:`monitor.embeddings`). The per-event value is the cosine distance to the
reference centroid of the model (and its ``z`` against the reference's distances);
the event is flagged as an outlier when ``z`` exceeds ``outlier_z``. The detector
(:class:`~monitor.detectors.EmbeddingDrift`) tests the stream of distances.

Prompts get the same test, separately (detector ``prompt_centroid``, from the event's
``input_embedding`` or the sampled ``input_text``): what users ask moving away from
what they asked (a new user population, a new feature, an abuse wave) shows there
before or without the answers changing, and tells the two causes apart.
"""

from __future__ import annotations

from monitor.signals.spec import NON_NEGATIVE, Option, SignalSpec, StreamSpec


def embedding_drift_signal(detector, outlier_z: float) -> dict:
    """The signal after ``detector`` has seen the event's embedding (its distance is the detector's last)."""
    distance = detector.last_distance
    z = detector.last_z
    if distance is None or z is None:
        return {"distance": distance, "flag": None}  # still learning the reference: not counted
    return {"distance": round(distance, 4), "z": round(z, 2), "flag": z > outlier_z}


SPEC = SignalSpec(
    name="embedding_drift",
    proxies="outputs (and, separately, prompts) moving away from their reference period (new topic, language or style), from sentence embeddings",
    reads=("model_call.embedding", "model_call.input_embedding", "model_call.output_text", "model_call.input_text"),
    series_labels=("model",),
    options={"outlier_z": Option(float, NON_NEGATIVE)},
    streams=(
        StreamSpec(
            "centroid",
            "AIFMEmbeddingDrift",
            "A model's outputs drifted away from their reference content.",
            "says something else than in its reference period: its output embeddings moved away from the reference centroid",
            ("model", "agent"),
            slot="embedding_drift",
        ),
        StreamSpec(
            "prompt_centroid",
            "AIFMPromptDrift",
            "What users ask a model drifted away from its reference.",
            "is asked something else than in its reference period: its prompt embeddings moved away from the reference centroid",
            ("model", "agent"),
            slot="prompt_drift",
        ),
    ),
    ratio_level="model",
)
