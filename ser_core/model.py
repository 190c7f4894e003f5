"""The model: arrays + JSON in one ``.npz`` file, a numpy forward pass, and ``Prediction``.

A trained scikit-learn ``Pipeline(StandardScaler, MLPClassifier)`` is exported to plain arrays (scaler mean and
scale, each layer's weights and biases) plus a JSON model card. ``np.load(..., allow_pickle=False)`` cannot
execute code, so a model file from anywhere is safe to load; a checksum over the arrays catches corruption and
casual tampering, and shape checks catch files from an incompatible version.

The forward pass (ReLU hidden layers, softmax output, optional temperature) reproduces
``MLPClassifier.predict_proba`` to float precision; ``tests/test_model.py`` checks that.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .adapt import AdaptConfig, VoiceProfile, describe
from .adapt import offset as _offset
from .audio import DEFAULT_LIMITS, AudioSource, Limits, cut_short_text, decode_audio, envelope
from .calibration import ensemble_probs
from .errors import ModelError, NoSpeechError, TruncatedAudioError
from .features import FEATURE_VERSION, FeatureConfig, extract_windows
from .persist import atomic_write
from .vad import has_speech

FORMAT = "ser-model"
FORMAT_VERSION = 1

#: Long clips are also scored in windows of this length and hop (s) for the timeline.
WINDOW_S = 3.0
HOP_S = 1.5
TIMELINE_MIN_S = 6.0

#: What ``NoSpeechError`` says; the bot and ``ser predict`` show it as it is.
NO_SPEECH_TEXT = (
    "No speech found in this note: I only hear noise or silence. "
    "Record again closer to the microphone, in a quieter place."
)

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
class Model:
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
    adapt_head: Model | None = None
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

    # ------------------------------------------------------------------ inference
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

    def _probs_dict(self, p: np.ndarray) -> dict[str, float]:
        return {lab: float(p[i]) for i, lab in enumerate(self.labels)}

    def predict_signal(
        self, y: np.ndarray, *, sr: int | None = None, profile: VoiceProfile | None = None
    ) -> Prediction:
        """Predict from a decoded mono signal at the model's rate; ``NoSpeechError`` if it holds no voice.
        With a ``profile`` the model can use, the adapted head answers (``Prediction.adaptation``)."""
        sr = sr or self.features.sr
        if sr != self.features.sr:
            raise ModelError(f"signal is at {sr} Hz; the model needs {self.features.sr} Hz")
        duration = y.size / sr
        # Classifying noise would give a confident emotion for nothing; say so instead (``vad`` has the rule).
        if not has_speech(y, sr):
            raise NoSpeechError(NO_SPEECH_TEXT)
        bounds: list[tuple[int, int]] = []
        if duration >= TIMELINE_MIN_S:
            win, hop = int(WINDOW_S * sr), int(HOP_S * sr)
            bounds = [(s, s + win) for s in range(0, y.size - win + 1, hop)]
            if bounds[-1][1] < y.size:  # cover the tail too
                bounds.append((y.size - win, y.size))
        # One pass of frame features serves the whole clip and every window.
        X = extract_windows(y, self.features, bounds)
        cold = self.predict_proba(X)
        delta = self.voice_offset(profile)
        P = cold if delta is None else self.adapted_proba(X, delta)
        probs = self._probs_dict(P[0])
        timeline = tuple(
            Segment(round(a / sr, 2), round(b / sr, 2), self.labels[int(np.argmax(p))], self._probs_dict(p))
            for (a, b), p in zip(bounds, P[1:], strict=True)
        )
        return Prediction(
            label=max(probs, key=probs.__getitem__),
            probabilities=probs,
            duration_s=duration,
            model_version=self.version,
            timeline=timeline,
            speaker_adapted=delta is not None,
            adaptation=describe(profile, adapted=delta is not None) if profile is not None else "none",
            unsure_below=self.unsure_below,
            features=X[0],
            cold=cold[0],
            envelope=envelope(y),
        )

    def predict(
        self, audio: AudioSource, *, limits: Limits = DEFAULT_LIMITS, profile: VoiceProfile | None = None
    ) -> Prediction:
        """Decode ``audio`` (bytes, path or binary file) and predict. Raises ``AudioError`` subclasses.

        With a ``VoiceProfile`` of enough evidence and a model that has an adapted head, that head answers
        (``Prediction.adaptation`` says with what). The profile is not changed; fold ``Prediction.features``
        (and ``Prediction.cold``) into it afterwards.
        """
        decoded = decode_audio(audio, sr=self.features.sr, limits=limits)
        try:
            pred = self.predict_signal(decoded.samples, profile=profile)
        except NoSpeechError:
            if decoded.cut_short:  # "no voice" would blame the speaker for a broken upload
                raise TruncatedAudioError(cut_short_text(decoded.samples.size / self.features.sr)) from None
            raise
        return dataclasses.replace(pred, cut_short=True) if decoded.cut_short else pred

    def warm_up(self) -> None:
        """Predict one synthetic voice note (1 s, OGG/Opus at 48 kHz) so that lazy imports and librosa's JIT
        compilation (about 1.5 s) happen now rather than on the first user's note."""
        from .audio import encode

        t = np.arange(48_000) / 48_000
        y = 0.3 * np.sin(2 * np.pi * 150 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        self.predict(encode(y.astype(np.float32), 48_000, "OGG", "OPUS"))

    # ------------------------------------------------------------------ persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"scaler_mean": self.scaler_mean, "scaler_scale": self.scaler_scale}
        for k, net in enumerate(self.networks):
            for i, (W, b) in enumerate(zip(net.weights, net.biases, strict=True)):
                arrays[f"net{k}_W{i}"] = W
                arrays[f"net{k}_b{i}"] = b
        if self.adapt_head is not None and self.class_means is not None:
            arrays["adapt_means"] = self.class_means
            arrays.update({f"adp_{k}": v for k, v in self.adapt_head._arrays().items()})
        return {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in arrays.items()}

    def _meta(self, arrays: dict[str, np.ndarray]) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "labels": list(self.labels),
            "features": self.features.to_dict(),
            "n_networks": len(self.networks),
            "n_layers": len(self.networks[0].weights),
            "temperature": self.temperature,
            "checksum": _checksum(arrays),
            "card": self.card,
            "unsure_below": self.unsure_below,
            "adapt_head": None
            if self.adapt_head is None
            else {
                "n_networks": len(self.adapt_head.networks),
                "n_layers": len(self.adapt_head.networks[0].weights),
                "temperature": self.adapt_head.temperature,
                "config": self.adapt.to_dict(),
            },
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model atomically and durably (``persist.atomic_write``)."""
        if "version" not in self.card:
            now = _dt.datetime.now(_dt.timezone.utc)
            self.card["version"] = f"{now:%Y%m%d-%H%M%S}-{os.urandom(2).hex()}"  # unique within a second
        arrays = self._arrays()
        meta = json.dumps(self._meta(arrays), sort_keys=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, meta=np.array(meta), **arrays)
        return atomic_write(path, buf.getvalue(), durable=True, prefix=f".{Path(path).name}.")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float32)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def default_model_path() -> Path:
    """Path of the model that ships inside the package."""
    return Path(str(resources.files("ser_core") / "models" / "default.npz"))


def load_model(path: str | os.PathLike | None = None) -> Model:
    """Load a model file (``None``: the shipped default). Raises ``ModelError`` with the reason."""
    path = Path(path) if path is not None else default_model_path()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower() and zipfile.is_zipfile(path):
            raise ModelError(f"{path} holds pickled objects; refusing to load it (not a ser model)") from None
        raise ModelError(f"{path} is not a ser model file") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError ...: all mean "not a model file"
        raise ModelError(f"{path} is not a ser model file or is damaged ({type(exc).__name__})") from None
    # np.load hands back a member that is not a .npy file as raw bytes; such a file is not a model.
    if not all(isinstance(a, np.ndarray) for a in arrays.values()):
        raise ModelError(f"{path} is not a ser model file (it holds non-array members)")
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U":
        raise ModelError(f"{path} is not a ser model file (no metadata)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError:
        raise ModelError(f"{path} has unreadable metadata; the file is damaged") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} is not a ser model file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{path} has model format {meta.get('format_version')}; this ser_core reads {FORMAT_VERSION}. "
            "Retrain the model or upgrade ser_core."
        )
    if _checksum(arrays) != meta.get("checksum"):
        raise ModelError(
            f"{path} failed its checksum: the file was modified or damaged. Retrain or restore it."
        )
    try:
        features = FeatureConfig.from_dict(meta["features"])
        labels = tuple(meta["labels"])
        model = _head(arrays, "", meta, labels, features)
        model.card = dict(meta.get("card", {}))
        model.unsure_below = float(meta.get("unsure_below", 0.0))
        # An older file's "speaker_head" (z-scored by a profile's own statistics) is not used: its profiles
        # are not kept either, and such a model answers cold.
        adp = meta.get("adapt_head")
        if adp:
            model.adapt_head = _head(arrays, "adp_", adp, labels, features)
            model.class_means = arrays["adapt_means"].astype(np.float64)
            model.adapt = AdaptConfig.from_dict(adp["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path} is incomplete or from an incompatible version ({exc})") from None
    _validate(model, path)
    return model


def _head(arrays: dict, prefix: str, meta: dict, labels: tuple[str, ...], features: FeatureConfig) -> Model:
    networks = [
        Network(
            [arrays[f"{prefix}net{k}_W{i}"].astype(np.float64) for i in range(int(meta["n_layers"]))],
            [arrays[f"{prefix}net{k}_b{i}"].astype(np.float64) for i in range(int(meta["n_layers"]))],
        )
        for k in range(int(meta["n_networks"]))
    ]
    return Model(
        labels=labels,
        features=features,
        scaler_mean=arrays[f"{prefix}scaler_mean"].astype(np.float64),
        scaler_scale=arrays[f"{prefix}scaler_scale"].astype(np.float64),
        networks=networks,
        temperature=float(meta.get("temperature", 1.0)),
    )


def _validate(model: Model, path: Path) -> None:
    if model.features.encoder:
        from . import encoder

        if model.features.encoder not in encoder.ENCODERS:
            raise ModelError(
                f"{path.name} needs a speech encoder this ser_core does not know "
                f"({model.features.encoder!r}); upgrade ser_core"
            )
        spec = encoder.ENCODERS[model.features.encoder]
        if not encoder.available(spec.name):
            raise ModelError(
                f"{path.name} needs the {spec.name} speech encoder, which is not installed: run "
                f"{spec.install} (and pip install ctranslate2)"
            )
    if model.features.version != FEATURE_VERSION:
        raise ModelError(
            f"{path} was trained on feature version {model.features.version}; this ser_core computes version "
            f"{FEATURE_VERSION}. Retrain it with `ser train`."
        )
    if model.adapt_head is not None:
        _validate(model.adapt_head, path)
        means = model.class_means
        if (
            means is None
            or means.shape != (len(model.labels), model.scaler_mean.size)
            or not np.isfinite(means).all()
        ):
            raise ModelError(f"{path}: bad class means for the adapted head")
        if not (model.adapt.tau >= 0 and model.adapt.w_ref > 0 and model.adapt.min_evidence >= 0):
            raise ModelError(f"{path}: bad adaptation settings {model.adapt}")
    if not 0 <= model.unsure_below < 1:
        raise ModelError(f"{path}: implausible 'not sure' threshold {model.unsure_below}")
    d = model.features.dim
    if model.scaler_mean.shape != (d,) or model.scaler_scale.shape != (d,):
        raise ModelError(f"{path}: scaler has {model.scaler_mean.shape} values, features have {d}")
    if not model.labels or len(set(model.labels)) != len(model.labels):
        raise ModelError(f"{path}: bad class labels {model.labels}")
    if not 0.05 <= model.temperature <= 20:
        raise ModelError(f"{path}: implausible temperature {model.temperature}")
    for net in model.networks:
        n_in = d
        for W, b in zip(net.weights, net.biases, strict=True):
            if W.ndim != 2 or W.shape[0] != n_in or b.shape != (W.shape[1],):
                raise ModelError(f"{path}: layer shapes do not chain ({W.shape}, {b.shape})")
            n_in = W.shape[1]
        if n_in != len(model.labels):
            raise ModelError(f"{path}: output layer has {n_in} units for {len(model.labels)} classes")
        if not all(np.isfinite(a).all() for a in (*net.weights, *net.biases)):
            raise ModelError(f"{path}: weights contain NaN or infinity")
    if not (np.isfinite(model.scaler_mean).all() and (model.scaler_scale > 0).all()):
        raise ModelError(f"{path}: bad scaler values")
