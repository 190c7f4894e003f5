"""Test-time conditions are pure, seeded, and achieve what they say."""

from __future__ import annotations

import numpy as np
import pytest
from synth import SR, noise, tone

from ser_core.conditions import (
    CONDITIONS,
    add_noise,
    apply,
    babble,
    babble_bank,
    coloured_noise,
    gain,
    opus_roundtrip,
)
from ser_core.errors import ConfigError


def test_opus_roundtrip_keeps_length_and_content():
    y = tone(200, 2.0)
    out = opus_roundtrip(y, SR)
    assert out.shape == y.shape and out.dtype == np.float32
    # Lossy, with codec delay: compare spectra, not samples.
    a, b = np.abs(np.fft.rfft(y)), np.abs(np.fft.rfft(out))
    assert np.corrcoef(a, b)[0, 1] > 0.9


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0])
def test_add_noise_hits_the_snr(snr):
    y = tone(200, 2.0, amp=0.1)
    n = noise(2.0, amp=1.0, seed=3)
    mixed = add_noise(y, n, snr)
    achieved = 10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean((mixed - y).astype(float) ** 2))
    assert abs(achieved - snr) < 0.2


@pytest.mark.parametrize(("exponent", "low_high"), [(1.0, 5), (2.0, 50)])
def test_coloured_noise_slope(exponent, low_high):
    x = coloured_noise(SR * 4, exponent, np.random.default_rng(0))
    assert abs(np.sqrt(np.mean(x**2)) - 1) < 1e-3
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    ratio = p[(f > 100) & (f < 200)].mean() / p[(f > 1000) & (f < 2000)].mean()
    assert ratio > low_high  # 1/f: ~10x per decade; 1/f²: ~100x


def test_gain_clips_at_full_scale():
    y = tone(200, 1.0, amp=0.5)
    assert np.abs(gain(y, 12)).max() == 1.0
    np.testing.assert_allclose(gain(y, -12), y * 10 ** (-12 / 20), rtol=1e-5)


def test_babble_refuses_test_speakers():
    with pytest.raises(ConfigError, match="training speakers only"):
        babble_bank([tone()], ["07"], {"07", "08"})
    assert len(babble_bank([tone(), tone(300)], ["01", "02"], {"07"})) == 2


@pytest.mark.parametrize("name", CONDITIONS)
def test_conditions_are_deterministic_with_a_seed(name):
    y = tone(180, 1.5)
    bank = [tone(120 + 40 * i, 2.0, seed=i) for i in range(6)]
    a = apply(name, y, SR, np.random.default_rng(7), bank)
    b = apply(name, y, SR, np.random.default_rng(7), bank)
    assert a.shape == y.shape
    np.testing.assert_array_equal(a, b)
    if name != "clean":
        assert not np.array_equal(a, y)


def test_babble_mixes_several_voices():
    bank = [tone(100 + 50 * i, 1.0, seed=i) for i in range(8)]
    x = babble(bank, SR, np.random.default_rng(1))
    assert x.shape == (SR,) and abs(np.sqrt(np.mean(x.astype(float) ** 2)) - 1) < 1e-3


def test_unknown_condition_and_missing_bank():
    with pytest.raises(ConfigError, match="unknown condition"):
        apply("underwater", tone(), SR, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="babble bank"):
        apply("noisy20", tone(), SR, np.random.default_rng(0))
