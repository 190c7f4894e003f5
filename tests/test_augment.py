"""Training augmentations are pure, seeded, achieve what they say, and never touch test clips."""

from __future__ import annotations

import numpy as np
import pytest
from synth import SR, tone

from ser_core.augment import (
    AUGMENTATIONS,
    augment,
    parse_augment,
    pitch_shift,
    reverb,
    room_impulse,
    self_babble,
    speed,
)
from ser_core.errors import ConfigError


def peak_hz(y: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[np.argmax(spec)])


def sine(freq: float, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_each_augmentation_is_seeded_finite_and_changes_the_clip(name):
    y = tone(180, 1.5)
    a = augment(name, y, SR, np.random.default_rng(7))
    b = augment(name, y, SR, np.random.default_rng(7))
    c = augment(name, y, SR, np.random.default_rng(8))
    assert a.dtype == np.float32 and np.isfinite(a).all() and np.abs(a).max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    if name not in ("speed", "mix"):  # the only two that may change the length
        assert a.shape == y.shape
    else:
        assert 0.88 * y.size <= a.size <= 1.12 * y.size
    if a.shape == y.shape:
        assert not np.allclose(a, y, atol=1e-4)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length_and_pitch_together(factor):
    y = sine(1000.0, 1.0)
    out = speed(y, SR, factor)
    assert out.size == pytest.approx(y.size / factor, abs=2)
    assert peak_hz(out) == pytest.approx(1000.0 * factor, rel=0.01)


def test_speed_rejects_a_nonpositive_factor():
    with pytest.raises(ConfigError, match="positive"):
        speed(sine(440.0), SR, 0.0)


@pytest.mark.parametrize("semitones", [-3.0, 2.0])
def test_pitch_shift_moves_pitch_and_keeps_length_and_level(semitones):
    y = sine(300.0, 1.0)
    out = pitch_shift(y, SR, semitones)
    assert out.shape == y.shape
    assert peak_hz(out[2000:-2000]) == pytest.approx(300.0 * 2 ** (semitones / 12), rel=0.02)
    assert rms(out) == pytest.approx(rms(y), rel=0.05)


@pytest.mark.parametrize("rt60", [0.2, 0.6])
def test_room_impulse_decays_60_db_in_rt60(rt60):
    h = room_impulse(SR, rt60, np.random.default_rng(0)).astype(np.float64)
    assert h[0] == 1.0 and h.size == int(rt60 * SR)
    # Schroeder backward integration of the tail; fit the -5..-25 dB range and extrapolate to -60 dB.
    tail = h.copy()
    tail[0] = 0.0
    edc = np.cumsum(tail[::-1] ** 2)[::-1]
    db = 10 * np.log10(edc / edc[0] + 1e-30)
    sel = (db < -5) & (db > -25)
    slope = np.polyfit(np.flatnonzero(sel) / SR, db[sel], 1)[0]  # dB per second
    assert -60 / slope == pytest.approx(rt60, rel=0.2)


def test_reverb_keeps_length_and_rms_and_smears_time():
    y = np.zeros(SR, dtype=np.float32)
    y[1000:1160] = sine(500.0, 0.01)  # a 10 ms burst
    out = reverb(y, SR, 0.5, np.random.default_rng(1))
    assert out.shape == y.shape
    assert rms(out) == pytest.approx(rms(y), rel=1e-3)
    assert np.abs(out[4000:6000]).max() > 1e-3 * np.abs(out).max()  # the tail rings on after the burst


def test_noise_augmentation_snr_is_within_its_range():
    y = tone(200, 2.0, amp=0.1)
    for seed in range(12):
        out = augment("noise", y, SR, np.random.default_rng(seed))
        snr = 10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean((out - y).astype(float) ** 2))
        assert 5.0 - 0.2 <= snr <= 30.0 + 0.2


def test_gain_augmentation_is_between_3_and_12_db():
    y = tone(200, 1.0, amp=0.01)  # quiet: +12 dB does not clip
    for seed in range(12):
        out = augment("gain", y, SR, np.random.default_rng(seed))
        db = 20 * np.log10(rms(out) / rms(y))
        assert 3.0 - 0.01 <= abs(db) <= 12.0 + 0.01


def test_self_babble_is_unit_rms_and_made_of_the_clip_only():
    y = tone(150, 1.0)
    b = self_babble(y, np.random.default_rng(0))
    assert b.shape == y.shape and rms(b) == pytest.approx(1.0, rel=1e-3)
    # Its spectrum is the clip's (reversal and circular shifts keep the magnitude spectrum's peak).
    assert peak_hz(b) == pytest.approx(peak_hz(y), abs=2)


def test_opus_augmentation_keeps_the_spectrum():
    y = tone(200, 2.0)
    out = augment("opus", y, SR, np.random.default_rng(0))
    a, b = np.abs(np.fft.rfft(y)), np.abs(np.fft.rfft(out))
    assert np.corrcoef(a, b)[0, 1] > 0.9


def test_mix_chains_parts_and_always_changes_something():
    y = tone(180, 1.0)
    lengths = set()
    for seed in range(20):
        out = augment("mix", y, SR, np.random.default_rng(seed))
        # A float Opus decoder may overshoot full scale a little after gain, as a Discord client's does.
        assert np.isfinite(out).all() and np.abs(out).max() <= 1.2
        assert out.shape != y.shape or not np.allclose(out, y, atol=1e-4)
        lengths.add(out.size)
    assert len(lengths) > 1 and y.size in lengths  # speed is in some chains, not in all


def test_parse_augment():
    assert parse_augment("noise, opus,noise") == ("noise", "opus")
    assert parse_augment("none") == () and parse_augment(None) == () and parse_augment("") == ()
    with pytest.raises(ConfigError, match="'echo'.*choose from: opus"):
        parse_augment("opus,echo")
    with pytest.raises(ConfigError, match="unknown augmentation"):
        augment("echo", tone(), SR, np.random.default_rng(0))


def _dataset(n_per_speaker: int = 8, speakers: int = 6):
    from ser_core.workflow import Dataset

    rng = np.random.default_rng(0)
    n = n_per_speaker * speakers
    X = rng.standard_normal((n, 4)).astype(np.float32)
    y = np.array(["sad", "angry"] * (n // 2))
    groups = np.repeat([f"s{i}" for i in range(speakers)], n_per_speaker)
    aug = {"noise": X + 100.0, "gain": X - 100.0}  # recognisable copies
    return Dataset([], X, y, groups, {}, aug)


def test_training_set_adds_the_copies_of_those_rows_only():
    ds = _dataset()
    rows = np.array([0, 5, 9])
    X, y, g = ds.training_set(rows)
    assert X.shape == (9, 4)
    np.testing.assert_array_equal(X[3:6], ds.X[rows] + 100.0)
    np.testing.assert_array_equal(X[6:9], ds.X[rows] - 100.0)
    assert y.tolist() == ds.y[rows].tolist() * 3
    assert g.tolist() == [
        "s0",
        "s0",
        "s1",
        "s0~noise",
        "s0~noise",
        "s1~noise",
        "s0~gain",
        "s0~gain",
        "s1~gain",
    ]


def test_cross_validation_never_trains_on_copies_of_test_speakers(monkeypatch):
    from ser_core import dataset, workflow
    from ser_core.evaluate import cross_validate, splits

    ds = _dataset()
    seen: list[set[str]] = []
    real = workflow.Dataset.training_set

    def spy(self, rows):
        X, y, g = real(self, rows)
        seen.append({s.split("~")[0] for s in g})
        return X, y, g

    monkeypatch.setattr(workflow.Dataset, "training_set", spy)
    fitter = ds.fitter(*workflow.preset_parts("compact"))
    monkeypatch.setattr(dataset, "fit", lambda X, y, **kw: _Constant(len(set(y))))
    cross_validate("actors", ds.rows, ds.y, ds.groups, fitter, ("angry", "sad"))
    parts = splits("actors", ds.y, ds.groups)
    # The folds are fitted side by side, so the calls come in no set order: each fold's training speakers
    # once, copies included (a copy's group is "<speaker>~<augmentation>"), and never a test speaker's copy.
    assert sorted(map(sorted, seen)) == sorted(sorted(set(ds.groups[tr])) for _, tr, _ in parts)
    assert all(not set(ds.groups[tr]) & set(ds.groups[te]) for _, tr, te in parts)


class _Constant:
    def __init__(self, k: int):
        self.k = k

    def predict_proba(self, X):
        return np.full((len(X), self.k), 1.0 / self.k)
