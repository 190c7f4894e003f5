"""Features: pure functions, signal → frame matrix → clip vector.

What each preset computes (and the default) is in ``ser_core.presets``, the one registry.

Everything here is deterministic and free of I/O but for the encoder's weights, read once per process;
``ser_core.cache`` adds parallel extraction and caching.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import librosa
import numpy as np

from .constants import SAMPLE_RATE
from .dsp import (  # noqa: F401 - LEVEL_DBFS: its old home
    LEVEL_DBFS,
    PITCH_FRAME_S,
    lag_autocorrelation,
    normalize_level,
    zero_crossing_rate,
)
from .errors import ConfigError
from .vad import speech_mask

#: Bump when the extraction code changes what it computes: models record it and refuse to load otherwise.
FEATURE_VERSION = 2

#: Clip statistics a preset can ask for, in output order.
STAT_NAMES = ("mean", "std", "p10", "p25", "p50", "p75", "p90", "min", "max", "skew", "kurt", "slope")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that determines a feature vector; its ``key`` names cached vectors."""

    preset: str
    sr: int = SAMPLE_RATE
    n_mfcc: int = 40
    n_mels: int = 64
    n_fft: int = 512
    win_length: int = 400  # 25 ms at 16 kHz
    hop_length: int = 160  # 10 ms at 16 kHz
    stats: tuple[str, ...] = ("mean", "std", "p10", "p50", "p90", "skew", "slope")
    pitch: bool = True
    fmin: float = 60.0
    fmax: float = 500.0
    trim_silence: bool = False
    #: Scale each clip so its loudest 50 ms frames sit at LEVEL_DBFS before features (mic gain invariance).
    level_norm: bool = False
    #: A pretrained encoder (``ser_core.encoder.ENCODERS``) whose frames, pooled over speech by
    #: ``encoder_stats``, follow the hand-made statistics; "" for none.
    encoder: str = ""
    #: The encoder blocks whose outputs are pooled, side by side (0: the last). Earlier blocks carry more of how
    #: something is said and less of what is said.
    encoder_layers: tuple[int, ...] = (0,)
    encoder_stats: tuple[str, ...] = ("mean", "std")
    #: Zeros appended up to this many seconds before encoding (Whisper saw 30 s windows); 0 = none.
    encoder_pad_s: float = 0.0
    #: False: the encoder's statistics alone, without the hand-made ones.
    handcrafted: bool = True
    version: int = 2  # FEATURE_VERSION when saved; a model from another version is refused at load

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stats"] = list(self.stats)
        d["encoder_stats"] = list(self.encoder_stats)
        d["encoder_layers"] = list(self.encoder_layers)
        if not d["level_norm"]:
            d.pop("level_norm")  # absent = off: keys and files from before the setting existed stay valid
        if not self.encoder:
            for k in ("encoder", "encoder_layers", "encoder_stats", "encoder_pad_s", "handcrafted"):
                d.pop(k)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        d = dict(d)
        d["stats"] = tuple(d.get("stats", ()))
        for k in ("encoder_stats", "encoder_layers"):
            if k in d:
                d[k] = tuple(d[k])
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown feature settings {sorted(unknown)}; the model needs a newer ser_core")
        return cls(**d)

    @property
    def key(self) -> str:
        """Short stable hash of the settings (cache directory name)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return f"{self.preset}-{hashlib.sha256(blob).hexdigest()[:12]}"

    @property
    def dim(self) -> int:
        return _dim(self)


def __getattr__(name: str):
    # The presets moved to ``ser_core.presets`` (the one registry, above this module: it imports
    # ``FeatureConfig`` from here). Their old names still resolve here for code written against them, with a
    # warning; nothing in this project asks for them here any more.
    if name in ("PRESETS", "DEFAULT_PRESET", "get_preset"):
        import warnings

        from . import presets

        warnings.warn(
            f"ser_core.features.{name} moved to ser_core.presets.{name}", DeprecationWarning, stacklevel=2
        )
        return getattr(presets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------- frames


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=20.0, fmax=sr / 2).astype(np.float32)


@lru_cache(maxsize=8)
def _chroma_basis(sr: int, n_fft: int) -> np.ndarray:
    return librosa.filters.chroma(sr=sr, n_fft=n_fft).astype(np.float32)


FRAME_GROUPS_RICH = (
    ("logmel", "n_mels"),
    ("mfcc", "n_mfcc"),
    ("dmfcc", "n_mfcc"),
    ("contrast", 7),
    ("chroma", 12),
    ("centroid", 1),
    ("bandwidth", 1),
    ("rolloff", 1),
    ("flatness", 1),
    ("zcr", 1),
    ("logrms", 1),
)


def frame_features(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Frame-level features of a mono signal at ``cfg.sr``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float32 samples
    cfg : feature settings

    Returns
    -------
    F : np.ndarray [shape=(d, t), dtype=float32]; ``d`` = 40 for ``seed``, 169 for ``rich``;
        ``t`` = frames at ``cfg.hop_length`` samples.
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    if cfg.preset == "seed":
        return librosa.feature.mfcc(y=y, sr=cfg.sr, n_mfcc=cfg.n_mfcc).astype(np.float32)
    spec = np.abs(
        librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length, center=True)
    ).astype(np.float32)
    power = spec**2
    mel = _mel_basis(cfg.sr, cfg.n_fft, cfg.n_mels) @ power
    logmel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=cfg.n_mfcc)
    width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2)) if mfcc.shape[1] >= 3 else 0
    dmfcc = librosa.feature.delta(mfcc, width=width) if width >= 3 else np.zeros_like(mfcc)
    contrast = librosa.feature.spectral_contrast(S=spec, sr=cfg.sr, n_fft=cfg.n_fft, fmin=100.0, n_bands=6)
    chroma = _chroma_basis(cfg.sr, cfg.n_fft) @ power
    chroma = chroma / (chroma.max(axis=0, keepdims=True) + 1e-10)
    freqs = librosa.fft_frequencies(sr=cfg.sr, n_fft=cfg.n_fft).astype(np.float32)[:, None]
    total = spec.sum(axis=0, keepdims=True) + 1e-10
    centroid = (freqs * spec).sum(axis=0, keepdims=True) / total
    bandwidth = np.sqrt(((freqs - centroid) ** 2 * spec).sum(axis=0, keepdims=True) / total)
    cum = np.cumsum(spec, axis=0)
    rolloff = freqs[np.argmax(cum >= 0.85 * cum[-1:], axis=0)].T
    flatness = np.exp(np.mean(np.log(power + 1e-10), axis=0, keepdims=True)) / (
        np.mean(power, axis=0, keepdims=True) + 1e-10
    )
    zcr = zero_crossing_rate(y, frame_length=cfg.win_length, hop_length=cfg.hop_length)[:, : spec.shape[1]]
    logrms = 10 * np.log10(np.mean(power, axis=0, keepdims=True) + 1e-10)
    F = np.vstack(
        [
            logmel,
            mfcc,
            dmfcc,
            contrast,
            chroma,
            centroid / 1000,
            bandwidth / 1000,
            rolloff / 1000,
            flatness,
            zcr,
            logrms,
        ]
    )
    return F.astype(np.float32)


def pitch_track(y: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Autocorrelation F0 with voicing.

    Returns
    -------
    f0 : np.ndarray [shape=(t,)], Hz (0 where unvoiced)
    voicing : np.ndarray [shape=(t,)], normalised autocorrelation peak in [0, 1]
    """
    ac, frames = lag_autocorrelation(y, sr=cfg.sr, hop_length=cfg.hop_length)
    frame = ac.shape[1]
    lo, hi = int(cfg.sr / cfg.fmax), min(frame - 2, int(cfg.sr / cfg.fmin))
    seg = ac[:, lo:hi]
    rows = np.arange(seg.shape[0])
    # Multiples of the period score almost as high as the period itself; take the shortest lag within
    # 10 % of the best, then climb to its local maximum.
    best = seg.max(axis=1, keepdims=True)
    k = np.argmax(seg >= 0.9 * best, axis=1)
    for _ in range(8):
        step = (k + 1 < seg.shape[1]) & (seg[rows, np.minimum(k + 1, seg.shape[1] - 1)] > seg[rows, k])
        if not step.any():
            break
        k = k + step
    peak = seg[rows, k]
    # Parabolic interpolation around the peak for sub-sample lag.
    km = np.clip(k, 1, seg.shape[1] - 2)
    a, b, c = seg[np.arange(len(km)), km - 1], seg[np.arange(len(km)), km], seg[np.arange(len(km)), km + 1]
    denom = a - 2 * b + c
    offset = np.where(np.abs(denom) > 1e-9, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    lag = lo + km + np.clip(offset, -1, 1)
    energy = np.sqrt(np.mean(frames**2, axis=1))
    voiced = (peak > 0.5) & (energy > 0.02 * (energy.max() + 1e-10))
    f0 = np.where(voiced, cfg.sr / lag, 0.0)
    return f0.astype(np.float32), np.clip(peak, 0, 1).astype(np.float32)


PITCH_NAMES = (
    "f0_mean",
    "f0_std",
    "f0_p10",
    "f0_p50",
    "f0_p90",
    "f0_range",
    "f0_slope",
    "f0_dslope",
    "voiced_frac",
    "voicing_mean",
)


def pitch_stats(f0: np.ndarray) -> np.ndarray:
    """Ten statistics of a pitch track (semitones re 100 Hz over voiced frames), shape (10,)."""
    voiced = f0 > 0
    frac = float(voiced.mean()) if f0.size else 0.0
    if voiced.sum() < 3:
        return np.array([0, 0, 0, 0, 0, 0, 0, 0, frac, 0], dtype=np.float32)
    st = 12 * np.log2(f0[voiced] / 100.0)
    p10, p50, p90 = np.percentile(st, [10, 50, 90])
    t = np.linspace(0, 1, st.size)
    slope = np.polyfit(t, st, 1)[0]
    d = np.diff(st)
    return np.array(
        [st.mean(), st.std(), p10, p50, p90, p90 - p10, slope, np.abs(d).mean(), frac, 0.0], dtype=np.float32
    )


def clip_stats(F: np.ndarray, stats: tuple[str, ...]) -> np.ndarray:
    """Summarise frames over time.

    Parameters
    ----------
    F : np.ndarray [shape=(d, t)]
    stats : names from ``STAT_NAMES``

    Returns
    -------
    v : np.ndarray [shape=(d * len(stats),)], grouped by statistic (all ``mean``, then all ``std``, ...)
    """
    F = F.astype(np.float64)
    d, t = F.shape
    if t == 0:
        return np.zeros(d * len(stats), dtype=np.float32)
    mu = F.mean(axis=1)
    sd = F.std(axis=1)
    pct_names = [s for s in stats if s.startswith("p")]
    pcts = dict(zip(pct_names, np.percentile(F, [int(s[1:]) for s in pct_names], axis=1), strict=True))
    out = []
    for s in stats:
        if s == "mean":
            out.append(mu)
        elif s == "std":
            out.append(sd)
        elif s in pcts:
            out.append(pcts[s])
        elif s == "min":
            out.append(F.min(axis=1))
        elif s == "max":
            out.append(F.max(axis=1))
        elif s in ("skew", "kurt"):
            z = (F - mu[:, None]) / (sd[:, None] + 1e-8)
            out.append((z**3).mean(axis=1) if s == "skew" else (z**4).mean(axis=1) - 3.0)
        elif s == "slope":
            tt = np.linspace(-0.5, 0.5, t) if t > 1 else np.zeros(1)
            out.append((F - mu[:, None]) @ tt / (tt @ tt + 1e-12))
        else:
            raise ConfigError(f"unknown statistic {s!r}; choose from {', '.join(STAT_NAMES)}")
    return np.concatenate(out).astype(np.float32)


#: With ``trim_silence``, a row keeping fewer seconds of frames than this falls back to all its frames.
MIN_KEPT_S = 0.25


def extract(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Clip feature vector of a mono signal at ``cfg.sr``: shape ``(cfg.dim,)``, float32, all finite."""
    return extract_windows(y, cfg)[0]


def extract_windows(
    y: np.ndarray,
    cfg: FeatureConfig,
    windows: list[tuple[int, int]] = (),
    *,
    speech: np.ndarray | None = None,
) -> np.ndarray:
    """Vectors of the whole clip and of sample ranges ``[start, end)`` of it, from one pass of frame features.

    With ``cfg.trim_silence``, frame features are still computed on the whole signal, but each row's
    statistics (and pitch statistics) use only the frames ``vad.speech_mask`` keeps: leading and trailing
    silence and all but 100 ms of each side of pauses over 300 ms are left out. A row whose range keeps fewer
    than ``MIN_KEPT_S`` of frames uses all its frames.

    With ``cfg.encoder``, the encoder's frames (20 ms each) of the same rows, pooled over the frames the same
    mask keeps, follow (or, without ``cfg.handcrafted``, replace) the hand-made statistics. A caller that has
    run the speech step already passes its mask as ``speech`` (``vad.detect(..., level_norm=cfg.level_norm)``);
    otherwise it is found here.

    Returns
    -------
    V : np.ndarray [shape=(1 + len(windows), cfg.dim), dtype=float32]; row 0 is ``extract(y, cfg)``.
    """
    if cfg.level_norm:
        y = normalize_level(y, cfg.sr)
    keep = None
    if cfg.trim_silence:
        keep = speech
        if keep is None:
            keep = speech_mask(y, cfg.sr, hop_length=cfg.hop_length, frame_length=cfg.win_length)
    bounds = [(0, y.size), *windows]
    parts = [_handcrafted_rows(y, cfg, windows, keep)] if cfg.handcrafted else []
    if cfg.encoder:
        parts.append(_encoder_rows(y, cfg, bounds, keep))
    return np.nan_to_num(np.hstack(parts), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _encoder_rows(y: np.ndarray, cfg: FeatureConfig, bounds: list[tuple[int, int]], keep) -> np.ndarray:
    """Pooled encoder frames of each sample range in ``bounds``, block after block of ``cfg.encoder_layers``
    → [shape=(len(bounds), d_encoder)]."""
    from . import encoder

    step = encoder.FRAME_S * cfg.sr
    min_kept = max(1, int(round(MIN_KEPT_S / encoder.FRAME_S)))
    blocks = []
    chunks = encoder.mel_chunks(y, pad_s=cfg.encoder_pad_s)  # one log-mel for every block
    for frames in encoder.encode_blocks(cfg.encoder, cfg.encoder_layers, chunks):
        speech = encoder.frame_mask(keep, frames.shape[0]) if keep is not None else None
        rows = []
        for a, b in bounds:
            fa, fb = int(a // step), max(int(a // step) + 1, int(np.ceil(b / step)))
            F = frames[fa:fb]
            if speech is not None and speech[fa:fb].sum() >= min_kept:
                F = F[speech[fa:fb]]
            rows.append(encoder.pool(F, cfg.encoder_stats))
        blocks.append(np.vstack(rows))
    return np.hstack(blocks)


def _handcrafted_rows(y: np.ndarray, cfg: FeatureConfig, windows, keep) -> np.ndarray:
    """The hand-made statistics of the whole clip and of each window (see ``extract_windows``)."""
    F = frame_features(y, cfg)
    hop = cfg.hop_length
    if keep is not None:
        keep = keep[: F.shape[1]]
    min_kept = max(1, int(round(MIN_KEPT_S * cfg.sr / hop)))
    f0 = voicing = None
    if cfg.pitch:
        f0, voicing = pitch_track(y, cfg)
    pitch_frame = int(PITCH_FRAME_S * cfg.sr)
    # Pitch frame j covers samples [j*hop, j*hop + 40 ms): centred on feature frame j + 20 ms / hop.
    pitch_offset = int(round(pitch_frame / 2 / hop))
    rows = []
    for i, (a, b) in enumerate([(0, y.size), *windows]):
        whole = i == 0
        fa, fb = (0, F.shape[1]) if whole else (a // hop, b // hop + 1)
        kept = None
        if keep is not None and keep[fa:fb].sum() >= min_kept:
            kept = keep[fa:fb]
        Fw = F[:, fa:fb]
        v = clip_stats(Fw if kept is None else Fw[:, kept], cfg.stats)
        if f0 is not None:
            if whole:
                pa, pb = 0, f0.size
            else:  # pitch frames are not centred: frame j covers samples [j*hop, j*hop + 40 ms)
                pa = min(a // hop, f0.size - 1)
                pb = max(pa + 1, min(f0.size, (b - pitch_frame) // hop + 1))
            f0w, vw = f0[pa:pb], voicing[pa:pb]
            if kept is not None:
                pk = keep[np.minimum(np.arange(pa, pb) + pitch_offset, keep.size - 1)]
                if pk.any():
                    f0w, vw = f0w[pk], vw[pk]
            p = pitch_stats(f0w)
            p[-1] = vw.mean()
            v = np.concatenate([v, p])
        rows.append(v)
    return np.vstack(rows)


def frame_names(cfg: FeatureConfig) -> list[str]:
    """Names of the rows of ``frame_features``."""
    if cfg.preset == "seed":
        return [f"mfcc{i}" for i in range(cfg.n_mfcc)]
    names = []
    for group, size in FRAME_GROUPS_RICH:
        n = getattr(cfg, size) if isinstance(size, str) else size
        names += [group] if n == 1 else [f"{group}{i}" for i in range(n)]
    return names


@lru_cache(maxsize=64)
def _dim(cfg: FeatureConfig) -> int:
    # Asked per note and per cached vector; listing 2048 encoder names each time cost 0.6 ms.
    return len(feature_names(cfg))


def feature_names(cfg: FeatureConfig) -> list[str]:
    """Names of the entries of ``extract``'s vector, e.g. ``mean:mfcc0``, ``mean:whisper-base@2:17``."""
    names = []
    if cfg.handcrafted:
        fr = frame_names(cfg)
        names += [f"{s}:{n}" for s in cfg.stats for n in fr]
        if cfg.pitch:
            names += list(PITCH_NAMES)
    if cfg.encoder:
        from .encoder import get_spec

        dim = get_spec(cfg.encoder).dim
        names += [
            f"{s}:{cfg.encoder}@{layer}:{i}"
            for layer in cfg.encoder_layers
            for s in cfg.encoder_stats
            for i in range(dim)
        ]
    return names


def with_overrides(cfg: FeatureConfig, **kw) -> FeatureConfig:
    """A copy of ``cfg`` with some settings changed (``ConfigError`` for unknown names)."""
    unknown = set(kw) - set(cfg.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown feature settings {sorted(unknown)}")
    return replace(cfg, **kw)
