"""The model a caller holds: ``Model``, the classifier (``ser_core.network``: arrays, a numpy forward pass, the
result types) with the way from audio to a ``Prediction`` (``ser_core.inference``) and its safe file
(``ser_core.persist``: npz without pickle + JSON card + checksum).

The names that lived here before the split (``Prediction``, ``Segment``, ``Network``, ``load_model``,
``default_model_path``, the timeline and file-format constants) are still importable from here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import inference, persist
from .adapt import VoiceProfile
from .audio import DEFAULT_LIMITS, AudioSource, Limits
from .inference import HOP_S, NO_SPEECH_TEXT, TIMELINE_MIN_S, WINDOW_S
from .network import UNCERTAIN_MARGIN, Classifier, Network, Prediction, Segment
from .persist import FORMAT, FORMAT_VERSION, default_model_path

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HOP_S",
    "NO_SPEECH_TEXT",
    "TIMELINE_MIN_S",
    "UNCERTAIN_MARGIN",
    "WINDOW_S",
    "Model",
    "Network",
    "Prediction",
    "Segment",
    "default_model_path",
    "load_model",
]


class Model(Classifier):
    """A trained classifier with its feature settings and model card.

    ``predict_proba`` takes feature vectors (n, d) and returns (n, n_classes) probabilities, the average
    of the ensemble's softmax outputs (each at ``temperature``).
    """

    def predict_signal(
        self, y: np.ndarray, *, sr: int | None = None, profile: VoiceProfile | None = None
    ) -> Prediction:
        """Predict from a decoded mono signal at the model's rate; ``NoSpeechError`` if it holds no voice.
        With a ``profile`` the model can use, the adapted head answers (``Prediction.adaptation``)."""
        return inference.predict_signal(self, y, sr=sr, profile=profile)

    def predict(
        self, audio: AudioSource, *, limits: Limits = DEFAULT_LIMITS, profile: VoiceProfile | None = None
    ) -> Prediction:
        """Decode ``audio`` (bytes, path or binary file) and predict (``inference.predict``). Raises
        ``AudioError`` subclasses."""
        return inference.predict(self, audio, limits=limits, profile=profile)

    def warm_up(self) -> None:
        """Predict one synthetic voice note so that lazy imports and JIT compilation happen now rather than on
        the first user's note (``inference.warm_up``)."""
        inference.warm_up(self)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model atomically and durably (``persist.save_model``)."""
        return persist.save_model(self, path)


def load_model(path: str | os.PathLike | None = None) -> Model:
    """Load a model file (``None``: the shipped default). Raises ``ModelError`` with the reason."""
    return persist.load_model(path if path is not None else default_model_path(), cls=Model)
