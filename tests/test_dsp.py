"""dsp: the signal helpers vad and features share."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from ser_core.dsp import LEVEL_DBFS, normalize_level, zero_crossing_rate


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 399, 16000, 16161])
def test_zero_crossing_rate_is_librosas(dtype, n):
    rng = np.random.default_rng(n)
    y = rng.standard_normal(n).astype(dtype)
    y[::7] = 0.0  # exact zeros and near-zeros count as positive
    y[1::11] = -1e-12
    want = librosa.feature.zero_crossing_rate(y, frame_length=400, hop_length=160, center=True)
    got = zero_crossing_rate(y, frame_length=400, hop_length=160)
    assert got.shape == want.shape == (1, 1 + n // 160)
    np.testing.assert_array_equal(got, want)


def test_zero_crossing_rate_of_a_tone():
    sr, f = 16000, 250.0
    y = np.sin(2 * np.pi * f * np.arange(sr) / sr + 0.1).astype(np.float32)
    zcr = zero_crossing_rate(y, frame_length=400, hop_length=160)
    assert np.median(zcr) == pytest.approx(2 * f / sr, abs=1 / 400)


def test_normalize_level_puts_the_loud_frames_at_the_level():
    sr = 16000
    y = (0.01 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr)).astype(np.float32)
    z = normalize_level(y, sr)
    rms_db = 20 * np.log10(np.sqrt(np.mean(z.astype(np.float64) ** 2)))
    assert rms_db == pytest.approx(LEVEL_DBFS, abs=0.1)
    silence = np.zeros(sr, np.float32)
    assert normalize_level(silence, sr) is silence
