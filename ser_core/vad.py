"""Voice activity: which frames of a note hold speech, and does it hold any at all.

Pure, deterministic functions of a mono float signal; frames are on the features' grid (``features``:
frame ``i`` is centred on sample ``i * hop_length``, so a signal of ``n`` samples has ``1 + n // hop_length``
frames — 10 ms at the default ``hop_length`` of 160 samples at 16 kHz).

**Trimming rule** (``speech_mask``, used by presets with ``trim_silence``, e.g. ``compact-trim``):

1. Frame energy ``e`` = RMS of a 25 ms frame of the signal high-passed at ``HIGHPASS_HZ`` = 100 Hz, in dBFS
   (speech has little energy below 100 Hz; rumble and brown noise have most of theirs there, and their
   frame energies swing so widely that they would cross any threshold set from the quietest frames).
2. Threshold ``min(noise + MARGIN_DB, loudest − RANGE_DB)``, at least ``ABS_FLOOR_DB``; ``noise`` is the
   ``NOISE_PERCENTILE``-th percentile of the clip's frame energies (its quiet stretches), so the threshold
   follows the room's noise floor: 10 dB above it, −80 dBFS at the least, and never more than 20 dB
   under the loudest frame (a note with no pause at all has no noise floor to find).
3. Frames above the threshold are speech. Leading and trailing silence is dropped except
   ``EDGE_S`` = 50 ms next to the speech (hangover: word onsets and endings sit below the threshold).
   A pause inside the speech is kept whole up to ``MAX_PAUSE_S`` = 300 ms (pauses that short are
   prosody); a longer one is cut down to ``PAUSE_KEEP_S`` = 100 ms on each side.

**No-speech rule** (``has_speech``, checked by every prediction through ``detect``): a note holds speech
when at least ``MIN_VOICED_S`` = 0.1 s of its frames are voiced, in runs of at least ``MIN_VOICED_RUN_S`` =
50 ms, and above the energy threshold. A frame is voiced when its normalised autocorrelation peaks at ≥ 0.5
at a lag of 2–16.7 ms (F0 60–500 Hz) *and* has first dipped at least 0.5 below that peak. The dip is what
rejects low-frequency noise: brown noise's autocorrelation decays smoothly from 1, so ``pitch_track`` calls
85 % of its frames voiced, but it never falls and rises again. Steady noise without voice (white, pink,
brown, hiss at any level) has no such runs; speech has them even at 0 dB SNR. Anything periodic in the voice
range counts as voice, so a hummed or whistled note, or a synthetic tone, passes.

Measured once (README, "Silence, pauses and notes without speech"): of all 1440 RAVDESS clips, clean, after
the Discord Opus round trip and with noise at 20 and 10 dB SNR, none is called speechless (the least voiced
has 0.42 s); 144 clips at 0 dB SNR pass too; 200 synthetic noises (white to brown, −70 to −10 dBFS, half
through Opus) are all rejected, none with a single voiced run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

from .constants import SAMPLE_RATE
from .dsp import PITCH_FRAME_S, lag_autocorrelation, normalize_level

#: Energy rule (dB): threshold = max(ABS_FLOOR_DB, min(noise + MARGIN_DB, loudest − RANGE_DB)).
NOISE_PERCENTILE = 10
MARGIN_DB = 10.0
RANGE_DB = 20.0
#: Frames quieter than this are digital silence or its remains (16-bit dither is about −100 dBFS). Not
#: higher: soft RAVDESS clips peak at −50 dBFS, and a −60 dBFS floor cut away half their voiced frames.
ABS_FLOOR_DB = -80.0
#: Energy is measured above this frequency (4th-order Butterworth high-pass).
HIGHPASS_HZ = 100.0
#: Pause rule (s).
EDGE_S = 0.05
MAX_PAUSE_S = 0.30
PAUSE_KEEP_S = 0.10
#: Voicing rule.
VOICING_PEAK = 0.5
VOICING_DIP = 0.5
FMIN, FMAX = 60.0, 500.0
MIN_VOICED_RUN_S = 0.05
#: Measured against Silero VAD (``python -m bench.studies.vad --compare``, a third of the four corpora): at 0.2 s, the
#: loudest 0.3 s of a clip was refused in 502 of 2254 cases (Silero at 0.1 s: 226), at 0.1 s in 50, and no noise
#: clip passes either way (none has one voiced run); whole clips, clean, at 20 or 5 dB SNR or quiet with digital
#: silence between words: this rule refused 0–2, Silero 0–7.
MIN_VOICED_S = 0.10

FRAME_S = 0.025
HOP_S = 0.010


def _n_frames(n: int, hop_length: int) -> int:
    return 1 + n // hop_length


def frame_energy_db(y: np.ndarray, *, hop_length: int, frame_length: int) -> np.ndarray:
    """RMS level of centred frames, in dBFS.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float samples in [-1, 1]
    hop_length, frame_length : samples

    Returns
    -------
    e : np.ndarray [shape=(1 + n // hop_length,), dtype=float64], dB re full scale (−100 for digital silence)
    """
    half = frame_length // 2
    # Zero padding, as the features' centred STFT frames: the first and last frames see half a frame.
    x = np.pad(np.asarray(y, dtype=np.float64), (half, half + frame_length))
    t = _n_frames(np.asarray(y).size, hop_length)
    c = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(t) * hop_length
    power = (c[starts + frame_length] - c[starts]) / frame_length
    return 10 * np.log10(power + 1e-10)


@lru_cache(maxsize=4)
def _highpass_sos(sr: int) -> np.ndarray:
    return butter(4, HIGHPASS_HZ, "highpass", fs=sr, output="sos")


def speech_band_energy_db(y: np.ndarray, sr: int, *, hop_length: int, frame_length: int) -> np.ndarray:
    """``frame_energy_db`` of ``y`` high-passed at ``HIGHPASS_HZ``: shape ``(1 + n // hop_length,)``, dBFS."""
    x = sosfilt(_highpass_sos(int(sr)), np.asarray(y, dtype=np.float64))
    return frame_energy_db(x, hop_length=hop_length, frame_length=frame_length)


def energy_threshold(e: np.ndarray) -> float:
    """The speech/non-speech level (dBFS) for frame energies ``e`` [shape=(t,)] (see the module docstring)."""
    if e.size == 0:
        return ABS_FLOOR_DB
    noise = float(np.percentile(e, NOISE_PERCENTILE))
    return max(ABS_FLOOR_DB, min(noise + MARGIN_DB, float(e.max()) - RANGE_DB))


def _runs(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a 1-d bool array."""
    d = np.diff(np.concatenate([[0], b.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def speech_mask(
    y: np.ndarray, sr: int = SAMPLE_RATE, *, hop_length: int = 160, frame_length: int = 400
) -> np.ndarray:
    """Frames to keep for features: speech, short pauses, and margins around it.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float samples at ``sr``
    sr : sample rate (Hz)
    hop_length, frame_length : the features' hop and window (samples), ``FeatureConfig.hop_length`` /
        ``win_length``

    Returns
    -------
    mask : np.ndarray [shape=(1 + n // hop_length,), dtype=bool], True for kept frames; all False when no
        frame rises above the threshold (the caller decides what to do then).

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> burst = np.concatenate([np.zeros(16000), 0.3 * np.sin(2 * np.pi * 200 * t), np.zeros(16000)])
    >>> m = speech_mask(burst.astype(np.float32))
    >>> m.shape, round(float(m.sum()) * 0.01, 1)
    ((301,), 1.1)
    """
    e = speech_band_energy_db(y, sr, hop_length=hop_length, frame_length=frame_length)
    speech = e > energy_threshold(e)
    mask = speech.copy()
    t = speech.size

    def frames(seconds: float) -> int:
        return max(1, int(round(seconds * sr / hop_length)))

    edge, max_pause, keep = frames(EDGE_S), frames(MAX_PAUSE_S), frames(PAUSE_KEEP_S)
    starts, ends = _runs(~speech)
    for s, e_ in zip(starts, ends, strict=True):
        if s == 0 and e_ == t:  # no speech at all
            break
        if s == 0:  # leading silence: keep the margin before the first word
            mask[max(s, e_ - edge) : e_] = True
        elif e_ == t:  # trailing silence
            mask[s : min(e_, s + edge)] = True
        elif e_ - s <= max_pause:  # a short pause is prosody: keep it
            mask[s:e_] = True
        else:  # a long pause: keep its two ends
            mask[s : s + keep] = True
            mask[e_ - keep : e_] = True
    return mask


def _voiced_ac_frames(y: np.ndarray, sr: int, hop_length: int) -> np.ndarray:
    """The voicing decision per autocorrelation frame (frame ``j`` = samples ``[j*hop, j*hop + 40 ms)``)."""
    ac, _ = lag_autocorrelation(y, sr=sr, hop_length=hop_length)
    lo, hi = int(sr / FMAX), min(ac.shape[1] - 1, int(sr / FMIN) + 1)
    k = lo + np.argmax(ac[:, lo:hi], axis=1)
    rows = np.arange(ac.shape[0])
    peak = ac[rows, k]
    # The lowest point before the peak's lag: a running minimum along the lags, read at each frame's lag.
    dip = peak - np.minimum.accumulate(ac[:, :hi], axis=1)[rows, k]
    return (peak >= VOICING_PEAK) & (dip >= VOICING_DIP)


def _voiced_blocks(y: np.ndarray, sr: int, hop_length: int, block: int):
    """``voiced_frames`` in pieces of ``block`` frames, as (first centred frame, bool array) pairs: each frame
    depends on its own samples only, so the pieces equal slices of the whole."""
    y = np.asarray(y, dtype=np.float32)
    t = _n_frames(y.size, hop_length)
    frame = int(PITCH_FRAME_S * sr)
    # Autocorrelation frames start at j*hop and are not centred: frame j is centred frame j + offset.
    offset = int(round(frame / 2 / hop_length))
    n_ac = 1 + (y.size - frame) // hop_length if y.size >= frame else 1
    n_ac = min(n_ac, max(0, t - offset))
    for j0 in range(0, n_ac, block):
        j1 = min(n_ac, j0 + block)
        v = _voiced_ac_frames(y[j0 * hop_length : (j1 - 1) * hop_length + frame], sr, hop_length)
        yield j0 + offset, v[: j1 - j0]


def voiced_frames(y: np.ndarray, sr: int = SAMPLE_RATE, *, hop_length: int = 160) -> np.ndarray:
    """Frames that are periodic at a voice pitch (60–500 Hz), on the centred frame grid.

    A frame is voiced when its normalised autocorrelation (``dsp.lag_autocorrelation``, 40 ms frames)
    peaks at ``VOICING_PEAK`` or more somewhere in the pitch lags and has first fallen at least
    ``VOICING_DIP`` below that peak: periodic sounds fall and rise again, low-frequency noise only decays.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float samples at ``sr``
    sr : sample rate (Hz); hop_length : samples

    Returns
    -------
    voiced : np.ndarray [shape=(1 + n // hop_length,), dtype=bool]; the first and last 20 ms are False.
    """
    out = np.zeros(_n_frames(np.asarray(y).size, hop_length), dtype=bool)
    for i0, v in _voiced_blocks(y, sr, hop_length, block=1 << 30):
        out[i0 : i0 + v.size] = v
    return out


def _run_seconds(b: np.ndarray, min_run: int, hop_s: float) -> float:
    starts, ends = _runs(b)
    lengths = ends - starts
    return float(lengths[lengths >= min_run].sum() * hop_s)


def voiced_seconds(y: np.ndarray, sr: int = SAMPLE_RATE, *, enough: float | None = None) -> float:
    """Seconds of voiced frames above the energy threshold, counting runs of at least ``MIN_VOICED_RUN_S``
    (10 ms frames).

    With ``enough``, stops as soon as that much is found and returns what was counted so far (at least
    ``enough``; a speech note then costs about one second of analysis whatever its length).
    """
    hop, frame = int(round(HOP_S * sr)), int(round(FRAME_S * sr))
    e = speech_band_energy_db(y, sr, hop_length=hop, frame_length=frame)
    loud = e > energy_threshold(e)
    min_run = int(round(MIN_VOICED_RUN_S / HOP_S))
    voiced = np.zeros(e.size, dtype=bool)
    for i0, v in _voiced_blocks(y, sr, hop, block=100):
        voiced[i0 : i0 + v.size] = v & loud[i0 : i0 + v.size]
        # Runs found so far can only grow with more frames, so the partial count never overshoots.
        if enough is not None and _run_seconds(voiced[: i0 + v.size], min_run, HOP_S) >= enough:
            break
    # Noise makes a voiced-looking frame now and then, never 50 ms of them in a row.
    return _run_seconds(voiced, min_run, HOP_S)


def has_speech(y: np.ndarray, sr: int = SAMPLE_RATE) -> bool:
    """Whether ``y`` [shape=(n,)] at ``sr`` holds speech: at least ``MIN_VOICED_S`` s of ``voiced_seconds``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> has_speech((0.1 * rng.standard_normal(32000)).astype(np.float32))
    False
    >>> t = np.arange(32000) / 16000
    >>> has_speech((0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32))
    True
    """
    return voiced_seconds(y, sr, enough=MIN_VOICED_S) >= MIN_VOICED_S


@dataclass(frozen=True)
class Speech:
    """What the speech step found in a note: whether it holds a voice (``has_speech``) and, when the features
    want it, the frames they keep (``speech_mask`` [shape=(1 + n // hop_length,), dtype=bool])."""

    voiced: bool
    mask: np.ndarray | None = None


def detect(
    y: np.ndarray,
    sr: int = SAMPLE_RATE,
    *,
    hop_length: int | None = None,
    frame_length: int = 400,
    level_norm: bool = False,
) -> Speech:
    """The speech step of a prediction, in one call: ``has_speech(y, sr)`` and, with ``hop_length`` and a
    voice found, ``speech_mask`` on the features' grid. With ``level_norm`` the mask is judged on the signal
    as the features see it (``dsp.normalize_level``): the -80 dBFS floor of the threshold then falls at the
    same place as in training.
    """
    if not has_speech(y, sr):
        return Speech(voiced=False)
    if hop_length is None:
        return Speech(voiced=True)
    z = normalize_level(y, sr) if level_norm else y
    return Speech(voiced=True, mask=speech_mask(z, sr, hop_length=hop_length, frame_length=frame_length))
