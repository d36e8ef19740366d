"""Model version changes: an annotation, not a failure signal.

A serving model version change (a model call's ``model_version``, or a ``deploy`` or
``rollback`` control event) segments that model's detectors: each starts a new segment,
so a regression that ships with a version is measured against the previous one and the
change is not read as drift (Control 9). The change is published as an annotation
(``type: "annotation"``) that dashboards draw and no alert routes.
"""

from __future__ import annotations

from monitor.signals.spec import SignalSpec, StreamSpec

SPEC = SignalSpec(
    name="model_version",
    proxies="a serving model version change (an annotation that segments the model's detectors)",
    reads=("model_call.model_version", "control.action", "control.target_model", "control.model_version"),
    series_labels=("model",),
    streams=(
        StreamSpec(
            "change",
            "AIFMModelVersionChanged",
            "The serving model version changed; detectors for this model start a new segment.",
            "started serving a new model version (its detectors started a new segment)",
            ("model",),
            severity="info",
        ),
    ),
    in_thresholds=False,
)
