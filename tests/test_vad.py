"""Voice activity (``ser_core.vad``): trimming silence and long pauses, and "no speech" notes."""

from __future__ import annotations

import numpy as np
import pytest
from synth import SR, random_model, tone

from ser_core import NoSpeechError
from ser_core.audio import encode
from ser_core.conditions import add_noise, coloured_noise
from ser_core.features import extract, extract_windows, frame_features
from ser_core.presets import PRESETS, get_preset
from ser_core.vad import EDGE_S, PAUSE_KEEP_S, has_speech, speech_mask, voiced_frames, voiced_seconds

HOP_S = 0.01


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def speech(seconds: float, *, seed: int = 0) -> np.ndarray:
    """Voiced 'speech': a harmonic tone with pitch and amplitude modulation, cut into syllables by short
    (80 ms) gaps every 250 ms."""
    y = tone(140 + 20 * seed, seconds, amp=0.3, vibrato=0.05, seed=seed)
    t = np.arange(y.size) / SR
    return (y * ((t % 0.25) < 0.17)).astype(np.float32)


def noise(kind: str, seconds: float, dbfs: float, seed: int) -> np.ndarray:
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]
    x = coloured_noise(int(seconds * SR), exponent, np.random.default_rng(seed)) * 10 ** (dbfs / 20)
    return np.clip(x, -1, 1).astype(np.float32)


def kept_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


# ---------------------------------------------------------------------------------------------- the mask
@pytest.mark.parametrize("preset", ["compact", "seed"])
@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.345])
def test_mask_has_one_entry_per_feature_frame(preset, seconds):
    cfg = get_preset(preset)
    y = tone(200, seconds)
    mask = speech_mask(y, SR, hop_length=cfg.hop_length, frame_length=cfg.win_length)
    assert mask.dtype == bool and mask.shape == (frame_features(y, cfg).shape[1],)
    assert voiced_frames(y, SR).shape == (frame_features(y, get_preset("compact")).shape[1],)


@pytest.mark.parametrize("floor", [None, -70.0, -45.0])
def test_leading_and_trailing_silence_are_trimmed(floor):
    """1 s of voice between 1 s of silence (digital, or room noise 25 dB below the voice): ~1 s kept."""
    y = np.concatenate([silence(1.0), tone(180, 1.0), silence(1.0)])
    if floor is not None:
        y = y + noise("pink", 3.0, floor, seed=1)
    mask = speech_mask(y, SR)
    (a, b), *rest = kept_runs(mask)
    assert not rest
    # 1 s and the 50 ms margin on each side, give or take a frame's reach (12.5 ms) and filter ringing
    assert abs((b - a) * HOP_S - (1.0 + 2 * EDGE_S)) <= 0.06
    assert abs(a * HOP_S - (1.0 - EDGE_S)) <= 0.03 and abs(b * HOP_S - (2.0 + EDGE_S)) <= 0.045


def test_a_long_pause_is_shortened_and_a_short_one_kept():
    y = np.concatenate(
        [
            silence(0.5),
            tone(180, 1.0),
            silence(1.0),
            tone(180, 1.0),
            silence(0.2),
            tone(180, 1.0),
            silence(0.5),
        ]
    )
    mask = speech_mask(y, SR)
    (a, b), (c, d) = kept_runs(mask)  # the long pause splits the kept frames in two, the short one does not
    margins = EDGE_S + PAUSE_KEEP_S  # before the first word or after the last, and 100 ms of the long pause
    assert abs((b - a) * HOP_S - (1.0 + margins)) <= 0.06
    assert abs((c - b) * HOP_S - (1.0 - 2 * PAUSE_KEEP_S)) <= 0.06  # 1 s pause: 100 ms kept on each side
    assert abs((d - c) * HOP_S - (1.0 + 0.2 + 1.0 + margins)) <= 0.06  # the 0.2 s pause is kept whole


def test_no_pause_no_silence_nothing_trimmed():
    y = tone(180, 2.0)
    assert speech_mask(y, SR).all()
    assert not speech_mask(silence(1.0), SR).any()


def test_mask_and_decision_are_deterministic():
    y = np.concatenate([silence(0.7), speech(1.5, seed=2), silence(0.4)]) + noise("white", 2.6, -50, seed=3)
    np.testing.assert_array_equal(speech_mask(y, SR), speech_mask(y.copy(), SR))
    assert voiced_seconds(y, SR) == voiced_seconds(y.copy(), SR)


# ---------------------------------------------------------------------------------------------- no speech
@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
@pytest.mark.parametrize("dbfs", [-60.0, -40.0, -20.0, -6.0])
def test_noise_without_voice_is_not_speech(kind, dbfs):
    for seed in range(3):
        y = noise(kind, 3.0, dbfs, seed)
        assert not has_speech(y, SR), (kind, dbfs, seed, voiced_seconds(y, SR))


def test_room_noise_with_digital_silence_around_is_not_speech():
    y = np.concatenate([silence(1.0), noise("pink", 2.0, -45, seed=4), silence(1.0)])
    assert not has_speech(y, SR)


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_voice_in_noise_at_10_db_snr_is_speech(kind, seed):
    y = np.concatenate([silence(0.5), speech(2.0, seed=seed), silence(0.5)])
    assert has_speech(y, SR)
    noisy = add_noise(y, noise(kind, 3.0, -20, seed=10 + seed), 10.0)
    assert has_speech(noisy, SR), voiced_seconds(noisy, SR)


def test_warm_up_tone_and_short_notes_are_speech():
    t = np.arange(SR) / SR
    warm_up = 0.3 * np.sin(2 * np.pi * 150 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    assert has_speech(warm_up.astype(np.float32), SR)
    assert has_speech(tone(220, 0.3), SR)


# ---------------------------------------------------------------------------------------------- features
def test_trimmed_features_use_speech_frames_only():
    cfg = get_preset("compact-trim")
    assert cfg.trim_silence and cfg.dim == get_preset("compact").dim
    voice = speech(1.5, seed=1)
    padded = np.concatenate([silence(1.0), voice, silence(1.5)]) + noise("pink", 4.0, -55, seed=5)
    v = extract(padded, cfg)
    assert v.shape == (cfg.dim,) and v.dtype == np.float32 and np.isfinite(v).all()
    untrimmed = extract(padded, get_preset("compact"))
    assert not np.allclose(v, untrimmed, atol=1e-3)
    # Trimmed, the padded note's vector is close to that of the voice alone (in the same room noise).
    room = noise("pink", 4.0, -55, seed=5)[SR : SR + voice.size]
    alone = extract(voice + room, get_preset("compact"))
    assert np.linalg.norm(v - alone) < 0.1 * np.linalg.norm(untrimmed - alone)
    np.testing.assert_array_equal(v, extract(padded.copy(), cfg))


def test_trimming_a_note_without_silence_changes_nothing():
    y = tone(200, 2.0)
    np.testing.assert_array_equal(extract(y, get_preset("compact-trim")), extract(y, get_preset("compact")))


def test_trimmed_windows_fall_back_to_all_frames_when_a_window_is_silent():
    cfg = get_preset("compact-trim")
    y = np.concatenate([speech(3.0), silence(3.0) + noise("white", 3.0, -70, seed=6), speech(3.0, seed=1)])
    windows = [(0, 3 * SR), (3 * SR, 6 * SR), (6 * SR, 9 * SR)]
    V = extract_windows(y, cfg, windows)
    assert V.shape == (4, cfg.dim) and np.isfinite(V).all()
    plain = extract_windows(y, get_preset("compact"), windows)
    np.testing.assert_array_equal(V[2], plain[2])  # the silent window: too few speech frames, all frames used


def test_existing_cache_keys_do_not_change():
    """``trim_silence`` was already a setting (off): adding the preset must not invalidate cached vectors."""
    assert get_preset("compact").key == "compact-a0454bb332bf"
    assert get_preset("compact-trim").to_dict()["trim_silence"] is True
    assert {k for k, c in PRESETS.items() if c.trim_silence and not c.encoder} == {"compact-trim"}


# ---------------------------------------------------------------------------------------------- the model
@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.mark.parametrize("kind", ["white", "brown"])
def test_model_refuses_a_note_without_speech(model, kind):
    data = encode(noise(kind, 2.0, -25, seed=7), SR, "OGG", "OPUS")
    with pytest.raises(NoSpeechError, match="No speech") as info:
        model.predict(data)
    assert "microphone" in str(info.value) and "\n" not in str(info.value)
    noisy_voice = add_noise(speech(2.0), noise(kind, 2.0, -25, seed=7), 10.0)
    assert model.predict(encode(noisy_voice, SR, "OGG", "OPUS")).label in model.labels


# ---------------------------------------------------------------------------------------------- RAVDESS
@pytest.mark.ravdess
@pytest.mark.slow
def test_ravdess_speech_is_speech_clean_and_noisy(ravdess_dir):
    """48 clips (2 per actor), clean and under ``noisy10`` (Opus + 10 dB SNR coloured or babble noise, the
    babble from other actors' clips): every one holds speech."""
    from ser_core.audio import decode
    from ser_core.conditions import apply
    from ser_core.datasets import scan_ravdess

    clips = scan_ravdess(ravdess_dir).clips
    sample = [c for i, c in enumerate(clips) if i % 60 in (7, 41)]
    assert len(sample) == 48 and len({c.speaker for c in sample}) == 24
    bank = [(c.speaker, decode(c.path)) for c in clips[3::120]]
    for i, c in enumerate(sample):
        y = decode(c.path)
        assert has_speech(y, SR), c.path
        babble = [s for spk, s in bank if spk != c.speaker]
        noisy = apply("noisy10", y, SR, np.random.default_rng(i), babble)
        assert has_speech(noisy, SR), (c.path, voiced_seconds(noisy, SR))


def _word(voiced_s: float, seed: int, fricative_s: float = 0.04, sr: int = 16_000) -> np.ndarray:
    """A spoken-like word: a noisy consonant onset, then a voiced vowel at about 140 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(voiced_s * sr)) / sr
    phase = 2 * np.pi * np.cumsum(140 + 15 * np.sin(2 * np.pi * 2 * t)) / sr
    vowel = sum(np.sin(k * phase) / k for k in range(1, 8)) * np.hanning(t.size) ** 0.3
    n = int(fricative_s * sr)
    return np.concatenate([rng.normal(0, 0.3, n) * np.hanning(n), vowel])


def test_a_quiet_clean_voice_with_digital_silence_between_words_is_speech():
    """Judged recordings sound like this: peak −9 dBFS, RMS near −31 dBFS, exact zeros between two short
    words (0.15 s of voicing in all). The 0.2 s rule called it speechless."""
    sr = 16_000
    parts = [np.zeros(int(0.3 * sr))]
    for i, w in enumerate((0.08, 0.07)):
        parts += [_word(w, i), np.zeros(int(1.2 * sr))]
    y = np.concatenate(parts)
    y = (y / np.abs(y).max() * 10 ** (-9 / 20)).astype(np.float32)
    rms = 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    assert -33 < rms < -28 and np.count_nonzero(y == 0) > 0.8 * y.size
    assert 0.1 <= voiced_seconds(y, sr) < 0.2
    assert has_speech(y, sr)


def test_a_third_of_a_second_of_loud_speech_is_speech():
    y = _word(0.18, 3, fricative_s=0.12)
    y = (0.7 * y / np.abs(y).max()).astype(np.float32)
    assert y.size == int(0.3 * 16_000) and voiced_seconds(y) < 0.2
    assert has_speech(y)
