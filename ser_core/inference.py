"""A note's way through the library, in order: decode (``audio``) → is there speech (``vad``) → the clip's and
its timeline windows' feature vectors (``features``) → the cold or the adapted head (``network``) →
``Prediction``. ``Model.predict`` and ``Model.predict_signal`` are these functions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import vad
from .adapt import VoiceProfile
from .audio import DEFAULT_LIMITS, AudioSource, Limits, cut_short_text, decode_audio, envelope
from .errors import ModelError, NoSpeechError, TruncatedAudioError
from .features import extract_windows
from .network import Classifier, Prediction, Segment

#: Long clips are also scored in windows of this length and hop (s) for the timeline.
WINDOW_S = 3.0
HOP_S = 1.5
TIMELINE_MIN_S = 6.0

#: What ``NoSpeechError`` says; the bot and ``ser predict`` show it as it is.
NO_SPEECH_TEXT = (
    "No speech found in this note: I only hear noise or silence. "
    "Record again closer to the microphone, in a quieter place."
)


def predict_signal(
    model: Classifier, y: np.ndarray, *, sr: int | None = None, profile: VoiceProfile | None = None
) -> Prediction:
    """Predict from a decoded mono signal at the model's rate; ``NoSpeechError`` if it holds no voice.
    With a ``profile`` the model can use, the adapted head answers (``Prediction.adaptation``)."""
    sr = sr or model.features.sr
    if sr != model.features.sr:
        raise ModelError(f"signal is at {sr} Hz; the model needs {model.features.sr} Hz")
    return _predict(model, y, envelope(y), profile)


def _predict(model: Classifier, y: np.ndarray, level: np.ndarray, profile: VoiceProfile | None) -> Prediction:
    """The steps after decoding, each module once and in order: speech (``vad``) → features (and the
    encoder) → head (``network``, ``adapt``) → ``Prediction``. ``level`` is the picture's level curve
    (``audio.envelope`` of ``y``)."""
    cfg, sr = model.features, model.features.sr
    duration = y.size / sr
    # Classifying noise would give a confident emotion for nothing; say so instead (``vad`` has the rule).
    speech = vad.detect(
        y,
        sr,
        hop_length=cfg.hop_length if cfg.trim_silence else None,
        frame_length=cfg.win_length,
        level_norm=cfg.level_norm,
    )
    if not speech.voiced:
        raise NoSpeechError(NO_SPEECH_TEXT)
    bounds: list[tuple[int, int]] = []
    if duration >= TIMELINE_MIN_S:
        win, hop = int(WINDOW_S * sr), int(HOP_S * sr)
        bounds = [(s, s + win) for s in range(0, y.size - win + 1, hop)]
        if bounds[-1][1] < y.size:  # cover the tail too
            bounds.append((y.size - win, y.size))
    # One pass of frame features serves the whole clip and every window.
    X = extract_windows(y, cfg, bounds, speech=speech.mask)
    cold, P, adapted, adaptation = model.answer(X, profile)
    probs = _probs_dict(model.labels, P[0])
    timeline = tuple(
        Segment(
            round(a / sr, 2), round(b / sr, 2), model.labels[int(np.argmax(p))], _probs_dict(model.labels, p)
        )
        for (a, b), p in zip(bounds, P[1:], strict=True)
    )
    return Prediction(
        label=max(probs, key=probs.__getitem__),
        probabilities=probs,
        duration_s=duration,
        model_version=model.version,
        timeline=timeline,
        speaker_adapted=adapted,
        adaptation=adaptation,
        unsure_below=model.unsure_below,
        features=X[0],
        cold=cold[0],
        envelope=level,
    )


def _probs_dict(labels: tuple[str, ...], p: np.ndarray) -> dict[str, float]:
    return {lab: float(p[i]) for i, lab in enumerate(labels)}


def predict(
    model: Classifier,
    audio: AudioSource,
    *,
    limits: Limits = DEFAULT_LIMITS,
    profile: VoiceProfile | None = None,
) -> Prediction:
    """Decode ``audio`` (bytes, path or binary file) and predict. Raises ``AudioError`` subclasses.

    With a ``VoiceProfile`` of enough evidence and a model that has an adapted head, that head answers
    (``Prediction.adaptation`` says with what). The profile is not changed; fold ``Prediction.features``
    (and ``Prediction.cold``) into it afterwards.
    """
    decoded = decode_audio(audio, sr=model.features.sr, limits=limits)
    try:
        pred = _predict(model, decoded.samples, envelope(decoded.samples), profile)
    except NoSpeechError:
        if decoded.cut_short:  # "no voice" would blame the speaker for a broken upload
            raise TruncatedAudioError(cut_short_text(decoded.samples.size / model.features.sr)) from None
        raise
    return dataclasses.replace(pred, cut_short=True) if decoded.cut_short else pred


def warm_up(model: Classifier) -> None:
    """Predict one synthetic voice note (1 s, OGG/Opus at 48 kHz) so that lazy imports and librosa's JIT
    compilation (about 1.5 s) happen now rather than on the first user's note."""
    from .audio import encode

    t = np.arange(48_000) / 48_000
    y = 0.3 * np.sin(2 * np.pi * 150 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    predict(model, encode(y.astype(np.float32), 48_000, "OGG", "OPUS"))
