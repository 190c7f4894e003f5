"""The classifier as arrays and what it answers: ``Network`` (one MLP's weights), ``Classifier`` (the scaler,
the ensemble, the temperature and the adapted head: feature vectors → probabilities, a numpy forward pass) and
the result types ``Prediction`` and ``Segment``.

A trained scikit-learn ``Pipeline(StandardScaler, MLPClassifier)`` is exported to plain arrays (scaler mean and
scale, each layer's weights and biases) plus a JSON model card (``ser_core.persist`` writes them).

The forward pass (ReLU hidden layers, softmax output, optional temperature) reproduces
``MLPClassifier.predict_proba`` to float precision; ``tests/test_model.py`` checks that. ``ser_core.model.Model``
is this classifier with the pipeline from audio (``ser_core.inference``) and its file (``ser_core.persist``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .adapt import AdaptConfig, VoiceProfile, describe
from .adapt import offset as _offset
from .calibration import ensemble_probs
from .errors import ModelError
from .features import FeatureConfig

#: The reply calls the result uncertain when the top class leads the runner-up by less than this.
UNCERTAIN_MARGIN = 0.10


@dataclass(frozen=True)
class Segment:
    """One window of the timeline: ``start_s``/``end_s`` in seconds, its top label and all probabilities."""

    start_s: float
    end_s: float
    label: str
    probabilities: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    """Result of one clip.

    ``probabilities`` maps every class (in ``Model.labels`` order) to a probability; they sum to 1.
    ``timeline`` is empty for clips shorter than ``TIMELINE_MIN_S``.
    """

    label: str
    probabilities: dict[str, float]
    duration_s: float
    model_version: str
    timeline: tuple[Segment, ...] = ()
    speaker_adapted: bool = False
    #: The file ended early (an upload cut short): the prediction is of the part that arrived.
    cut_short: bool = False
    #: Which adaptation answered: "none", "neutral reference 3", "profile 12 notes", or both joined by " + ".
    adaptation: str = "none"
    #: Below this top probability the answer is "not sure" (the model's, chosen on training corpora).
    unsure_below: float = 0.0
    #: The whole clip's feature vector [shape=(d,)], to fold into a ``VoiceProfile``; not serialised.
    features: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: The cold head's probabilities of the whole clip [shape=(c,)], which a profile folds a note in with.
    cold: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: Peak level in 256 bins over the clip [shape=(256,), in [0, 1]], for pictures; not serialised.
    envelope: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    @property
    def ranked(self) -> list[tuple[str, float]]:
        """(label, probability) pairs, most likely first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])

    @property
    def uncertain(self) -> bool:
        """True when the answer is likely wrong: the top class is not clearly ahead of the second, or its
        probability is below the model's ``unsure_below``."""
        (_, p1), (_, p2) = self.ranked[:2]
        return p1 - p2 < UNCERTAIN_MARGIN or p1 < self.unsure_below

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "uncertain": self.uncertain,
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "duration_s": round(self.duration_s, 3),
            "model_version": self.model_version,
            "speaker_adapted": self.speaker_adapted,
            "adaptation": self.adaptation,
            "cut_short": self.cut_short,
            "timeline": [
                {
                    "start_s": s.start_s,
                    "end_s": s.end_s,
                    "label": s.label,
                    "probabilities": {k: round(v, 4) for k, v in s.probabilities.items()},
                }
                for s in self.timeline
            ],
        }


@dataclass
class Network:
    """One MLP: ``weights[i]`` has shape (n_in, n_out); ReLU between layers, logits at the end."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def logits(self, Z: np.ndarray) -> np.ndarray:
        h = Z
        for i, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ W + b
            if i < len(self.weights) - 1:
                np.maximum(h, 0, out=h)
        return h


@dataclass
class Classifier:
    """A trained classifier with its feature settings and model card.

    ``predict_proba`` takes feature vectors (n, d) and returns (n, n_classes) probabilities, the average
    of the ensemble's softmax outputs (each at ``temperature``).
    """

    labels: tuple[str, ...]
    features: FeatureConfig
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    networks: list[Network]
    temperature: float = 1.0
    card: dict = field(default_factory=dict)
    #: The adapted head: a classifier of ``x - offset`` (``ser_core.adapt``), the training population's class
    #: means [shape=(c, d)] the offset is measured from, and how a profile becomes an offset.
    adapt_head: Classifier | None = None
    class_means: np.ndarray | None = None
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    #: An answer whose probability is below this is "not sure" (``Prediction.uncertain``).
    unsure_below: float = 0.0

    @property
    def supports_adaptation(self) -> bool:
        return self.adapt_head is not None and self.class_means is not None

    def voice_offset(self, profile: VoiceProfile | None) -> np.ndarray | None:
        """The offset [shape=(d,)] of the voice ``profile`` describes, or None (no adaptation: too little
        heard, another feature set, or a model without an adapted head)."""
        if profile is None or profile.empty or not self.supports_adaptation:
            return None
        return _offset(profile, self.class_means, self.labels, self.adapt)

    def adapted_proba(self, X: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """The adapted head's probabilities of rows ``X`` [shape=(n, d)] of a voice whose offset is ``delta``."""
        assert self.adapt_head is not None
        return self.adapt_head.predict_proba(np.atleast_2d(X) - delta)

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unversioned"))

    def standardize(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.scaler_mean) / self.scaler_scale

    def network_logits(self, X: np.ndarray) -> np.ndarray:
        """Each network's logits for feature vectors ``X`` [shape=(n, d)] → [shape=(k, n, n_classes)]."""
        Z = self.standardize(np.atleast_2d(X))
        return np.stack([net.logits(Z) for net in self.networks])

    def predict_proba(self, X: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """Class probabilities for feature vectors ``X`` [shape=(n, d)] → [shape=(n, n_classes)]."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.scaler_mean.shape[0]:
            raise ModelError(
                f"feature vectors have {X.shape[1]} values but the model expects {self.scaler_mean.shape[0]}"
            )
        return ensemble_probs(
            self.network_logits(X), self.temperature if temperature is None else temperature
        )

    def answer(
        self, X: np.ndarray, profile: VoiceProfile | None = None
    ) -> tuple[np.ndarray, np.ndarray, bool, str]:
        """The heads' answer for rows ``X`` [shape=(n, d)] of one voice: the cold head's probabilities
        [shape=(n, c)], the answering head's (the adapted head's when ``profile`` gives an offset, else the cold
        ones), whether the adapted head answered, and which adaptation did (``adapt.describe``; "none" without a
        profile)."""
        cold = self.predict_proba(X)
        delta = self.voice_offset(profile)
        P = cold if delta is None else self.adapted_proba(X, delta)
        adaptation = describe(profile, adapted=delta is not None) if profile is not None else "none"
        return cold, P, delta is not None, adaptation
