"""Signal processing that both the speech detector (``vad``) and the features build on: frame
autocorrelation and level normalisation.

Kept apart so that ``vad`` and ``features`` depend on it and not on each other.
"""

from __future__ import annotations

import librosa
import numpy as np

#: Pitch frames are 40 ms (two periods of the lowest pitch) and not centred: frame j covers samples
#: [j*hop, j*hop + PITCH_FRAME_S*sr).
PITCH_FRAME_S = 0.04


def lag_autocorrelation(y: np.ndarray, *, sr: int, hop_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised short-time autocorrelation, the common ground of ``pitch_track`` and ``vad``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float samples at ``sr``
    sr : sample rate (Hz)
    hop_length : frame hop (samples)

    Returns
    -------
    ac : np.ndarray [shape=(t, m)], ``ac[j, k]`` = periodicity of frame ``j`` at a lag of ``k`` samples, 1 at
        ``k = 0``, near 1 at the period of a periodic frame; ``m`` = ``PITCH_FRAME_S * sr``, ``t`` =
        ``1 + (n - m) // hop_length`` (at least 1). Frame ``j`` covers samples ``[j*hop, j*hop + m)``.
    frames : np.ndarray [shape=(t, m)], the mean-removed, Hann-windowed frames
    """
    frame = int(PITCH_FRAME_S * sr)
    if y.size < frame:
        y = np.pad(y, (0, frame - y.size))
    frames = librosa.util.frame(y.astype(np.float32), frame_length=frame, hop_length=hop_length).T
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = frames * np.hanning(frame).astype(np.float32)
    n = 1 << (2 * frame - 1).bit_length()
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, n=n, axis=1)) ** 2, n=n, axis=1)[:, :frame]
    # Normalise by the window's own autocorrelation so the peak height is a periodicity measure.
    w = np.hanning(frame)
    wac = np.fft.irfft(np.abs(np.fft.rfft(w, n=n)) ** 2, n=n)[:frame]
    return ac / (ac[:, :1] + 1e-10) / (wac / wac[0] + 1e-3), frames


#: ``normalize_level`` puts the loudest 10 % of a clip's 50 ms frames at this RMS level (dBFS).
LEVEL_DBFS = -20.0


def normalize_level(y: np.ndarray, sr: int) -> np.ndarray:
    """``y`` scaled so that the RMS of its loudest 10 % of 50 ms frames is ``LEVEL_DBFS`` (no clipping check:
    features are computed in float). Silence is returned unchanged."""
    n = max(1, int(0.05 * sr))
    m = max(1, y.size // n)
    frames = np.resize(y, m * n).reshape(m, n).astype(np.float64)
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.sort(rms)[-max(1, m // 10) :].mean()
    if loud <= 1e-6:
        return y
    return (y * (10 ** (LEVEL_DBFS / 20) / loud)).astype(np.float32)


def zero_crossing_rate(y: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """Fraction of sign changes in each centred frame [shape=(1, 1 + n // hop_length)], as
    ``librosa.feature.zero_crossing_rate`` computes it (edge padding, samples within 1e-10 of 0 count as
    positive), in plain numpy: librosa's is a numba gufunc cached in site-packages, and two processes compiling
    it at once can leave a cache that crashes every later process (numba issue 10128; seen here)."""
    y = np.pad(y, frame_length // 2, mode="edge")
    frames = librosa.util.frame(y, frame_length=frame_length, hop_length=hop_length)
    negative = np.signbit(frames) & (np.abs(frames) > 1e-10)
    crossings = np.zeros(frames.shape, dtype=bool)
    crossings[1:] = negative[1:] != negative[:-1]
    return np.mean(crossings, axis=0, keepdims=True)
