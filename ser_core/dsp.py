"""Frame-level signal processing that both the speech detector (``vad``) and the features build on.

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
