"""The presets: the one registry of what each named recipe is — its feature settings (``FeatureConfig``), its
classifier head (``MLPParams``) and the augmented copies it trains with by default.

- ``whisper-mid`` (the default): Whisper base's blocks 2 and 4 (``ser_core.encoder``) on level-normalised audio,
  mean and std over speech frames (2048 values); ``whisper-base`` / ``whisper-tiny``: the last block of base /
  tiny.en; ``compact-whisper``: ``compact-trim``'s statistics beside ``whisper-mid``'s.
- ``seed``: the classic recipe — 40 MFCCs (librosa defaults: 2048-point FFT, hop 512) averaged over time.
- ``compact``: the ``rich`` frame features summarised by mean and std only (348 values).
- ``compact-level``: ``compact`` on level-normalised audio (``normalize_level``).
- ``compact-trim``: ``compact`` with ``trim_silence``: the statistics use only the frames ``vad.speech_mask``
  keeps (leading and trailing silence dropped, pauses over 300 ms cut to 100 ms at each side).
- ``rich``: 169 frame features from one 25 ms / 10 ms STFT — 64 log-mel bands, 40 MFCCs and
  their deltas, 7 spectral-contrast bands, 12 chroma bins, centroid, bandwidth, roll-off, flatness, ZCR and log
  energy — each summarised over the clip by mean, std, 10/50/90th percentiles, skewness and linear slope, plus
  10 statistics of the pitch contour (autocorrelation F0 with a voicing threshold). Elsewhere richer clip
  statistics measured +5.5 points over mean+std on unseen speakers; here they did not (README).

``PRESETS``, ``PRESET_PARAMS`` and ``PRESET_AUGMENT`` are views of ``REGISTRY`` by one part, kept for the
callers that import them (also from ``ser_core.features`` and ``ser_core.workflow``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .augment import parse_augment
from .errors import ConfigError
from .features import FeatureConfig
from .model import Model
from .train import DEFAULT_PARAMS, SEED_PARAMS, MLPParams, fit


@dataclass(frozen=True)
class Preset:
    """One named recipe: what a clip becomes (``features``), the head fitted on it (``params``), and the
    augmentations (``ser_core.augment``) one copy of every training clip gets unless ``--augment`` says
    otherwise (``augment``; empty: clean clips only)."""

    features: FeatureConfig
    params: MLPParams = DEFAULT_PARAMS
    augment: tuple[str, ...] = ()


#: Encoder presets: a class-balanced multinomial logistic regression (C = 0.01 chosen on RAVDESS actors and
#: RAVDESS <-> nEMO transfer; ``bench.studies.frontends``). Balanced because nEMO has no calm and no disgust.
#: The hand-made presets' classifier settings are fixed in advance (MLP size/alpha tuning moved nothing on actor
#: folds).
ENCODER_PARAMS = MLPParams(head="logreg", C=0.01, balance="class")


def _encoder_preset(
    name: str,
    encoder: str,
    layers: tuple[int, ...] = (0,),
    *,
    handcrafted: bool = False,
    augment: tuple[str, ...] = (),
) -> Preset:
    """A preset over ``encoder``'s blocks ``layers`` (0: the last), pooled by mean and std over the speech frames
    of level-normalised audio, with the encoder head (``ENCODER_PARAMS``). Level first: the corpora sit 23 dB
    apart (RAVDESS -34 dBFS, EmoDB -11), and unnormalised models learned "loud" as "happy" (README,
    bench.studies.frontends). ``handcrafted``: ``compact-trim``'s statistics beside them."""
    features = FeatureConfig(
        preset=name,
        stats=("mean", "std"),
        trim_silence=True,
        level_norm=True,
        encoder=encoder,
        encoder_layers=layers,
        handcrafted=handcrafted,
    )
    return Preset(features, ENCODER_PARAMS, augment)


REGISTRY: dict[str, Preset] = {
    "seed": Preset(
        FeatureConfig(
            preset="seed",
            n_mfcc=40,
            n_mels=128,
            n_fft=2048,
            win_length=2048,
            hop_length=512,
            stats=("mean",),
            pitch=False,
        ),
        SEED_PARAMS,
    ),
    "rich": Preset(FeatureConfig(preset="rich")),
    # The rich frame features summarised by mean and std only (348 values); the default before the encoder
    # presets. On the actor folds it scored 51.5 % against 50.8 % for `rich`, was chosen over `rich` in 5 of 6
    # folds by inner cross-validation on training actors (`ser evaluate --nested compact,rich`), and trains ten
    # times faster.
    "compact": Preset(FeatureConfig(preset="compact", stats=("mean", "std"))),
    # `compact` on level-normalised audio: insensitive to microphone gain (±12 dB: −0.8/0.0 points instead of
    # −12.5/−8.4), but 1.9 points lower on clean clips and 5 lower after the Opus round trip (README).
    "compact-level": Preset(FeatureConfig(preset="compact-level", stats=("mean", "std"), level_norm=True)),
    # `compact` over speech frames only (``vad.speech_mask``: leading/trailing silence and long pauses left out).
    "compact-trim": Preset(
        FeatureConfig(preset="compact-trim", stats=("mean", "std"), trim_silence=True),
        # Every augmentation the issue lists, one copy each: +3.8 points clean, +4.8 after Opus and +10.3 with
        # noise on the actor folds (bench.studies.augmentation); the `mix` chain on top moved nothing clear, so it is
        # left out.
        augment=("opus", "pitch", "speed", "noise", "gain", "reverb"),
    ),
    # Whisper encoder frames (``ser_core.encoder``) of level-normalised audio, mean and std over speech frames
    # (``_encoder_preset``).
    "whisper-tiny": _encoder_preset("whisper-tiny", "whisper-tiny.en"),
    "whisper-base": _encoder_preset("whisper-base", "whisper-base"),
    # Blocks 2 and 4 of Whisper base's six: the middle of the encoder, where how something is said is still
    # strong and what is said not yet dominant. Chosen on RAVDESS unseen actors and RAVDESS <-> nEMO transfer.
    "whisper-mid": _encoder_preset(
        "whisper-mid",
        "whisper-base",
        (2, 4),
        # One noisy copy of every clip, chosen on training corpora only: +0.8 points on unseen RAVDESS actors
        # (nEMO in training), +2.7 nEMO → RAVDESS, +1.1 RAVDESS → nEMO; at 20 dB SNR the drop falls from 7.7 to
        # 4.8 points (RAVDESS actor folds). `mix` and `opus` beside it added nothing clear against noise
        # (bench.studies.augmentation). A pitch-shifted copy beside it (python -m bench.studies.copies): choice 55.9 → 56.6
        # (RAVDESS → nEMO +3.6, nEMO → RAVDESS −1.9, unseen actors +0.6); nested inside RAVDESS's training actors
        # it won 5 of 6 folds. The trade: a third encoder pass per clip, and every fit sees three times the clips
        # instead of twice.
        augment=("noise", "pitch"),
    ),
    # `compact-trim`'s statistics beside `whisper-mid`'s.
    "compact-whisper": _encoder_preset("compact-whisper", "whisper-base", (2, 4), handcrafted=True),
}
#: The preset ``ser train``, the bot's retraining and the shipped model use when none is named.
DEFAULT_PRESET = "whisper-mid"

#: Views of ``REGISTRY``: each preset's ``FeatureConfig``, head, and default augmentations (presets without any
#: are left out, as before).
PRESETS: dict[str, FeatureConfig] = {name: p.features for name, p in REGISTRY.items()}
PRESET_PARAMS: dict[str, MLPParams] = {name: p.params for name, p in REGISTRY.items()}
PRESET_AUGMENT: dict[str, tuple[str, ...]] = {name: p.augment for name, p in REGISTRY.items() if p.augment}


def names() -> list[str]:
    """The preset names: the default first, then the others in registry order."""
    return [DEFAULT_PRESET, *(n for n in REGISTRY if n != DEFAULT_PRESET)]


def get(name: str) -> Preset:
    """The ``Preset`` of a name; ``ConfigError`` listing the choices if unknown."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(REGISTRY)}") from None


def get_preset(name: str) -> FeatureConfig:
    """The ``FeatureConfig`` of a preset name; ``ConfigError`` listing the choices if unknown."""
    return get(name).features


def preset_parts(preset: str) -> tuple[FeatureConfig, MLPParams]:
    """``preset``'s feature settings and classifier head (``ConfigError`` if unknown)."""
    p = get(preset)
    return p.features, p.params


def preset_augment(preset: str, augment: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """The augmentations to train ``preset`` with: ``augment`` if given (``"none"`` for none), else the
    preset's own (``Preset.augment``)."""
    if augment is not None:
        return parse_augment(augment)
    return REGISTRY[preset].augment if preset in REGISTRY else ()


def fit_preset(preset: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Model:
    """``preset``'s classifier fitted on ``X`` [shape=(n, d)] (``groups`` [shape=(n,)]: for its weighting)."""
    features, params = preset_parts(preset)
    return fit(X, y, features=features, params=params, groups=groups)
