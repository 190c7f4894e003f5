"""ser_core — speech-emotion recognition from audio bytes. Knows nothing about Discord.

The public API::

    from ser_core import load_model, predict, transcribe
    model = load_model()                  # the shipped default model (or load_model("my.npz"))
    pred = model.predict(audio_bytes)     # bytes | path | binary file → Prediction
    pred.label, pred.confidence, pred.probabilities, pred.timeline
    said = transcribe(audio_bytes)        # what it says (offline Whisper base, ~30x the emotion's time)
    said.text, said.language, said.words  # words with start_s/end_s on the note's timeline

Every error raised on purpose is a ``SerError``; ``AudioError`` messages are meant for the end user.
"""

from __future__ import annotations

import os

# One OpenMP thread per process unless the user says otherwise. CTranslate2 (the speech encoder) otherwise
# runs on every core whatever ``intra_threads`` says, and its spinning threads made an encode 20x slower
# (50 ms → 1 s) as soon as a second process wanted the 2 cores. libgomp reads the variable once, when it loads;
# scikit-learn and CTranslate2 ship the same libgomp and importing this package loads scikit-learn, so an entry
# point (the CLI, the bot) would be too late: it is set here, before them, and only where the user has not.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from . import errors
from .audio import Limits, decode
from .constants import EMOTIONS, SAMPLE_RATE
from .errors import *  # noqa: F403 - the whole hierarchy is public; errors.__all__ lists it once
from .features import FeatureConfig, extract
from .model import Model, Prediction, Segment, default_model_path, load_model
from .presets import PRESETS, get_preset
from .transcript import Transcript, Word, transcribe

__all__ = [
    *errors.__all__,
    "EMOTIONS",
    "PRESETS",
    "SAMPLE_RATE",
    "FeatureConfig",
    "Limits",
    "Model",
    "Prediction",
    "Segment",
    "Transcript",
    "Word",
    "decode",
    "default_model_path",
    "extract",
    "get_preset",
    "load_model",
    "predict",
    "transcribe",
]

__version__ = "0.1.0"


def predict(audio, *, model: Model | None = None, limits: Limits | None = None) -> Prediction:
    """Predict the emotion of ``audio`` (bytes, path or binary file) with ``model`` (default: shipped)."""
    m = model if model is not None else _default()
    return m.predict(audio, limits=limits or Limits())


_DEFAULT: Model | None = None


def _default() -> Model:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_model()
    return _DEFAULT
