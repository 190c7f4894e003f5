"""Features are pure, deterministic functions with documented shapes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from synth import SR, noise, tone

from ser_core.errors import ConfigError
from ser_core.features import clip_stats, extract, feature_names, frame_features, pitch_stats, pitch_track
from ser_core.presets import PRESETS, get_preset


@pytest.mark.parametrize("preset", list(PRESETS))
def test_extract_shape_names_and_determinism(preset):
    cfg = get_preset(preset)
    y = tone(200, 2.0)
    v = extract(y, cfg)
    assert v.shape == (cfg.dim,) == (len(feature_names(cfg)),)
    assert v.dtype == np.float32 and np.isfinite(v).all()
    np.testing.assert_array_equal(v, extract(y.copy(), cfg))


def test_seed_preset_is_the_classic_recipe():
    import librosa

    y = tone(200, 2.0)
    expected = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=40).mean(axis=1)
    np.testing.assert_allclose(extract(y, get_preset("seed")), expected, rtol=1e-5, atol=1e-4)


def test_frame_features_rows_and_frames():
    cfg = get_preset("rich")
    F = frame_features(tone(200, 1.0), cfg)
    assert F.shape == (169, 1 + SR // cfg.hop_length)


def test_clip_stats_match_numpy_and_scipy():
    rng = np.random.default_rng(0)
    F = rng.gamma(2.0, size=(3, 500))
    v = clip_stats(F, ("mean", "std", "p10", "p50", "p90", "skew", "kurt", "min", "max"))
    parts = v.reshape(9, 3)
    np.testing.assert_allclose(parts[0], F.mean(1), rtol=1e-5)
    np.testing.assert_allclose(parts[1], F.std(1), rtol=1e-5)
    np.testing.assert_allclose(parts[2:5], np.percentile(F, [10, 50, 90], axis=1), rtol=1e-5)
    np.testing.assert_allclose(parts[5], sps.skew(F, axis=1), rtol=1e-4)
    np.testing.assert_allclose(parts[6], sps.kurtosis(F, axis=1), rtol=1e-4)
    np.testing.assert_allclose(parts[7:9], [F.min(1), F.max(1)], rtol=1e-5)


def test_slope_of_a_ramp():
    F = np.vstack([np.linspace(0, 10, 200), np.full(200, 3.0)])
    slope = clip_stats(F, ("slope",))
    np.testing.assert_allclose(slope, [10.0, 0.0], atol=1e-4)  # change over the whole clip


def test_unknown_stat_and_preset():
    with pytest.raises(ConfigError, match="unknown statistic"):
        clip_stats(np.zeros((2, 5)), ("median",))
    with pytest.raises(ConfigError, match="seed, rich, compact"):
        get_preset("nope")


@pytest.mark.parametrize("f0", [110.0, 220.0, 330.0])
def test_pitch_track_finds_the_fundamental(f0):
    track, voicing = pitch_track(tone(f0, 1.0), get_preset("rich"))
    voiced = track[track > 0]
    assert voiced.size > 0.8 * track.size
    assert abs(np.median(voiced) - f0) / f0 < 0.03
    assert voicing.mean() > 0.5


def test_noise_is_mostly_unvoiced():
    track, _ = pitch_track(noise(1.0), get_preset("rich"))
    assert (track > 0).mean() < 0.2


def test_pitch_stats_of_a_glide():
    t = np.linspace(0, 1, 100)
    s = pitch_stats(100 * 2 ** (t * 12 / 12))  # one octave up: 0 → 12 semitones
    assert s.shape == (10,)
    assert abs(s[6] - 12) < 0.5  # slope over the clip, semitones
    assert s[8] == 1.0  # all voiced


def test_features_differ_for_different_sounds():
    cfg = get_preset("rich")
    a, b = extract(tone(120, 2.0), cfg), extract(noise(2.0), cfg)
    assert np.linalg.norm(a - b) > 10


def test_window_vectors_from_one_pass_match_separate_extraction():
    from ser_core.features import extract_windows

    cfg = get_preset("rich")
    y = np.concatenate([tone(150, 3.0), noise(3.0, amp=0.05), tone(300, 3.0, amp=0.5)])
    V = extract_windows(y, cfg, [(0, 3 * SR), (6 * SR, 9 * SR)])
    assert V.shape == (3, cfg.dim)
    np.testing.assert_array_equal(V[0], extract(y, cfg))
    for row, (a, b) in zip(V[1:], [(0, 3 * SR), (6 * SR, 9 * SR)], strict=True):
        alone = extract(y[a:b], cfg)
        # Only frames at the window edges differ (context from the neighbouring audio).
        assert np.corrcoef(row, alone)[0, 1] > 0.99
        assert np.linalg.norm(row - alone) < 0.1 * np.linalg.norm(alone)


def test_level_normalisation_makes_features_gain_invariant():
    from ser_core.features import LEVEL_DBFS, normalize_level

    y = tone(200, 2.0, amp=0.3)
    z = normalize_level(y, SR)
    frames = z[: SR * 2 // 800 * 800].reshape(-1, 800)
    loud = np.sort(np.sqrt((frames.astype(float) ** 2).mean(1)))[-len(frames) // 10 :].mean()
    assert abs(20 * np.log10(loud) - LEVEL_DBFS) < 0.1
    cfg = get_preset("compact-level")
    np.testing.assert_allclose(extract(y * 0.25, cfg), extract(y, cfg), rtol=1e-3, atol=1e-3)
    assert not np.allclose(
        extract(y * 0.25, get_preset("compact")), extract(y, get_preset("compact")), atol=1e-3
    )
    assert np.array_equal(normalize_level(np.zeros(SR, np.float32), SR), np.zeros(SR, np.float32))


def test_level_setting_absent_from_old_keys():
    assert "level_norm" not in get_preset("compact").to_dict()
    assert get_preset("compact-level").to_dict()["level_norm"] is True
