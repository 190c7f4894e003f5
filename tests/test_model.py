"""Model: numpy forward pass equals scikit-learn; the file format is safe, atomic and checked."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from synth import SR, noise, tone

from ser_core import inference
from ser_core.audio import encode
from ser_core.errors import ConfigError, DatasetError, ModelError
from ser_core.features import extract
from ser_core.model import load_model
from ser_core.presets import get_preset
from ser_core.train import MLPParams, fit, pipeline

SMALL = MLPParams(hidden=(32, 16), max_iter=150)


def _toy(n_per=15, d=None, seed=0):
    cfg = get_preset("seed")
    rng = np.random.default_rng(seed)
    labels = ["angry", "sad", "happy", "calm"]
    X = rng.normal(size=(n_per * len(labels), d or cfg.dim))
    y = np.repeat(labels, n_per)
    for i, lab in enumerate(labels):
        X[y == lab, i] += 4
    return X, y, cfg


def test_forward_pass_matches_sklearn():
    X, y, cfg = _toy()
    from sklearn.preprocessing import LabelEncoder

    enc = LabelEncoder().fit(y)
    pipe = pipeline(SMALL, seed=3).fit(X, enc.transform(y))
    model = fit(X, y, features=cfg, params=SMALL, seed=3)
    ref = pipe.predict_proba(X)
    # Model output is in canonical order; sklearn's in LabelEncoder (alphabetical) order.
    cols = [list(enc.classes_).index(lab) for lab in model.labels]
    np.testing.assert_allclose(model.predict_proba(X), ref[:, cols], atol=1e-6)
    assert model.labels == ("calm", "happy", "sad", "angry")


def test_binary_classifier_exports_two_columns():
    X, y, cfg = _toy()
    keep = np.isin(y, ["sad", "angry"])
    model = fit(X[keep], y[keep], features=cfg, params=SMALL)
    P = model.predict_proba(X[keep])
    assert P.shape == (keep.sum(), 2) and np.allclose(P.sum(1), 1)
    assert (np.array(model.labels)[P.argmax(1)] == y[keep]).mean() > 0.95


def test_save_load_round_trip(tmp_path):
    X, y, cfg = _toy()
    model = fit(X, y, features=cfg, params=MLPParams(hidden=(16, 8), n_ensemble=2, max_iter=100))
    path = model.save(tmp_path / "m.npz")
    loaded = load_model(path)
    assert loaded.labels == model.labels and loaded.version == model.version
    assert loaded.features == cfg
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-5)
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temp file


def _rewrite(path, mutate):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    mutate(arrays)
    np.savez(path, **arrays)


def test_tampered_weights_fail_the_checksum(tmp_path):
    X, y, cfg = _toy()
    path = fit(X, y, features=cfg, params=SMALL).save(tmp_path / "m.npz")

    def bump(a):
        a["net0_W0"] = a["net0_W0"] + 1e-3

    _rewrite(path, bump)
    with pytest.raises(ModelError, match="checksum"):
        load_model(path)


def test_incompatible_format_version(tmp_path):
    X, y, cfg = _toy()
    path = fit(X, y, features=cfg, params=SMALL).save(tmp_path / "m.npz")

    def bump(a):
        meta = json.loads(str(a["meta"]))
        meta["format_version"] = 99
        a["meta"] = np.array(json.dumps(meta))

    _rewrite(path, bump)
    with pytest.raises(ModelError, match="format 99"):
        load_model(path)


def test_pickled_payload_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"format": "ser-model"}], dtype=object))
    with pytest.raises(ModelError, match="pickle"):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_garbage_files(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ModelError):
        load_model(path)


def test_zip_without_meta(tmp_path):
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", b"")
    with pytest.raises(ModelError):
        load_model(path)


def test_missing_file():
    with pytest.raises(ModelError, match="not found"):
        load_model("/nonexistent/model.npz")


def test_fit_rejects_bad_input():
    X, y, cfg = _toy()
    with pytest.raises(ConfigError, match="features"):
        fit(X[:, :10], y, features=cfg)
    with pytest.raises(DatasetError, match="two classes"):
        fit(X[:5], np.array(["sad"] * 5), features=cfg)


def test_synthetic_training_separates_different_sounds():
    """Four clearly different sound classes, rich features, held-out 'speakers' (seeds): near perfect."""
    cfg = get_preset("rich")
    makers = {
        "sad": lambda s: tone(110 + 5 * s, 1.5, amp=0.1, seed=s),
        "angry": lambda s: tone(300 + 10 * s, 1.5, amp=0.6, seed=s),
        "fearful": lambda s: noise(1.5, amp=0.1, seed=s),
        "happy": lambda s: tone(220, 1.5, amp=0.3, vibrato=0.08 + 0.005 * s, seed=s),
    }
    X, y, g = [], [], []
    for lab, make in makers.items():
        for s in range(10):
            X.append(extract(make(s), cfg))
            y.append(lab)
            g.append(s)
    X, y, g = np.array(X), np.array(y), np.array(g)
    train = g < 7
    model = fit(X[train], y[train], features=cfg, params=MLPParams(hidden=(64, 32), max_iter=200))
    pred = np.array(model.labels)[model.predict_proba(X[~train]).argmax(1)]
    assert (pred == y[~train]).mean() >= 0.9


def test_predict_from_bytes_gives_timeline_for_long_clips():
    X, y, _ = _toy(d=get_preset("seed").dim)
    model = fit(X, y, features=get_preset("seed"), params=SMALL)
    short = model.predict(encode(tone(200, 3.0), SR, "WAV"))
    assert short.timeline == () and abs(short.duration_s - 3.0) < 0.01
    assert abs(sum(short.probabilities.values()) - 1) < 1e-6
    assert short.label == max(short.probabilities, key=short.probabilities.get)
    long = model.predict(encode(tone(200, 9.0), SR, "OGG", "OPUS"))
    assert len(long.timeline) >= 5
    assert long.timeline[0].start_s == 0 and long.timeline[-1].end_s == pytest.approx(
        long.duration_s, abs=0.01
    )
    d = long.to_dict()
    assert set(d) >= {"label", "confidence", "probabilities", "timeline", "model_version", "uncertain"}


def test_adapted_head_round_trip_and_switch(tmp_path):
    from ser_core.adapt import AdaptConfig, VoiceProfile
    from ser_core.train import fit_adaptive

    X, y, cfg = _toy()
    groups = np.array(["a", "b", "c"] * (len(y) // 3))
    model = fit_adaptive(X, y, groups, features=cfg, params=SMALL, adapt=AdaptConfig(min_evidence=3))
    model.unsure_below = 0.4
    loaded = load_model(model.save(tmp_path / "m.npz"))
    assert loaded.supports_adaptation and loaded.adapt == AdaptConfig(min_evidence=3)
    assert loaded.unsure_below == pytest.approx(0.4)
    np.testing.assert_allclose(loaded.class_means, model.class_means, rtol=1e-5)
    clip = encode(tone(200, 2.0), SR, "WAV")
    profile = VoiceProfile()
    first = loaded.predict(clip, profile=profile)
    assert not first.speaker_adapted and first.adaptation == "none"
    for _ in range(3):
        pred = loaded.predict(clip, profile=profile)
        profile.add_note(pred.features, pred.cold, loaded.labels)
    adapted = loaded.predict(clip, profile=profile)
    assert profile.n == 3 and adapted.speaker_adapted and adapted.adaptation == "profile 3 notes"
    # the offset really changes the answer's input: the adapted head sees x - delta
    delta = loaded.voice_offset(profile)
    np.testing.assert_allclose(
        list(adapted.probabilities.values()), loaded.adapted_proba(adapted.features, delta)[0], rtol=1e-6
    )
    assert adapted.to_dict()["adaptation"] == "profile 3 notes"


def test_profile_of_another_feature_size_is_ignored():
    from ser_core.adapt import AdaptConfig, VoiceProfile
    from ser_core.train import fit_adaptive

    X, y, cfg = _toy()
    model = fit_adaptive(
        X,
        y,
        np.array(["a", "b"] * (len(y) // 2)),
        features=cfg,
        params=SMALL,
        adapt=AdaptConfig(min_evidence=1),
    )
    foreign = VoiceProfile()
    for _ in range(3):
        foreign.add_note(np.ones(7), np.ones(len(model.labels)) / len(model.labels), model.labels)
    assert not model.predict(encode(tone(200, 1.0), SR, "WAV"), profile=foreign).speaker_adapted


def test_an_old_model_file_with_a_z_score_speaker_head_loads_and_answers_cold(tmp_path):
    """Files written before the adapted head had a "speaker_head" (profiles z-scored by their own statistics):
    they still load, and answer cold."""
    import json
    import zipfile

    X, y, cfg = _toy()
    path = fit(X, y, features=cfg, params=SMALL).save(tmp_path / "old.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta.pop("adapt_head", None)
    meta["speaker_head"] = {"n_networks": 1, "n_layers": 1, "temperature": 1.0, "min_clips": 5}
    np.savez(tmp_path / "older.npz", meta=np.array(json.dumps(meta)), **arrays)
    assert zipfile.is_zipfile(tmp_path / "older.npz")
    model = load_model(tmp_path / "older.npz")
    assert not model.supports_adaptation


def test_versions_are_unique_within_a_second(tmp_path):
    X, y, cfg = _toy()
    a = fit(X, y, features=cfg, params=SMALL)
    b = fit(X, y, features=cfg, params=SMALL)
    a.save(tmp_path / "a.npz")
    b.save(tmp_path / "b.npz")
    assert a.version != b.version


def test_model_from_another_feature_version_is_refused(tmp_path):
    X, y, cfg = _toy()
    path = fit(X, y, features=cfg, params=SMALL).save(tmp_path / "m.npz")

    def old(a):
        meta = json.loads(str(a["meta"]))
        meta["features"]["version"] = 1
        a["meta"] = np.array(json.dumps(meta))

    _rewrite(path, old)
    with pytest.raises(ModelError, match="feature version 1"):
        load_model(path)


def test_shipped_model_loads_with_its_card():
    from ser_core import EMOTIONS, default_model_path
    from ser_core.presets import DEFAULT_PRESET
    from ser_core.workflow import preset_augment

    model = load_model()
    assert default_model_path().stat().st_size < 20 * 1024 * 1024
    assert model.labels == EMOTIONS and model.supports_adaptation
    scores = model.card["scores"]
    off = {"corpora:ravdess", "corpora:nemo", "corpora:savee", "corpora:emodb"}
    assert set(scores) == {"actors", "random"} | off
    for s in scores.values():
        assert 0.125 < s["accuracy"] <= 1 and set(s["per_class"]) <= set(EMOTIONS)
    # Trained on the corpora that may train only; the evaluation-only ones were measured, never trained on.
    data = model.card["data"]
    assert set(data["corpora"]) == {"ravdess", "nemo"} and data["n_clips"] == 1440 + 4481
    assert set(data["test_only"]) == {"savee", "emodb"}
    assert all(
        scores[f"corpora:{c}"]["folds"][0]["trained_on"] == ["nemo", "ravdess"] for c in data["test_only"]
    )
    assert data["licence"].count("CC BY-NC-SA") == 2 and model.features.encoder == "whisper-base"
    # The shipped file is the default recipe, augmentation included: one noisy copy of every clip trained.
    assert model.features.preset == DEFAULT_PRESET
    assert data["augmented"] == list(preset_augment(DEFAULT_PRESET))
    assert model.card["n_train"] == data["n_clips"] * (1 + len(data["augmented"]))
    assert (default_model_path().with_suffix(".md")).read_text().startswith("# Model card")


@pytest.mark.ravdess
def test_shipped_model_recognises_its_training_clips(ravdess_dir):
    """A pipeline check, not an accuracy claim: features computed now must match those it was trained on."""
    from ser_core.datasets import scan_ravdess

    clips = scan_ravdess(ravdess_dir).clips[::36]
    model = load_model()
    hits = sum(model.predict(c.path).label == c.emotion for c in clips)
    assert hits / len(clips) > 0.8


def test_warm_up_runs_a_real_prediction(monkeypatch):
    X, y, cfg = _toy()
    model = fit(X, y, features=cfg, params=SMALL)
    seen = []
    real = inference._predict
    monkeypatch.setattr(inference, "_predict", lambda m, sig, *a: seen.append(sig.size) or real(m, sig, *a))
    model.warm_up()
    assert seen and abs(seen[0] - SR) < 400  # one second at 16 kHz (Opus adds a few ms)


def test_a_logistic_fit_warm_started_from_a_similar_model_ends_where_a_cold_one_does(monkeypatch):
    """The starting point is the old model carried into the new scaling (same logits on the new rows), and the
    solver needs fewer steps from it; the fitted model is the cold one up to the solver's tolerance."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import LabelEncoder, StandardScaler

    from ser_core.train import _warm_start

    cfg = get_preset("seed")
    rng = np.random.default_rng(1)
    labels = ["angry", "sad", "happy", "calm"]
    y = np.array(labels * 150)
    X = rng.normal(size=(y.size, cfg.dim)) + rng.normal(size=(4, cfg.dim))[[labels.index(v) for v in y]]
    X = X * np.linspace(0.5, 3, X.shape[1]) + np.linspace(-2, 2, X.shape[1])  # uneven scales and offsets
    params = MLPParams(head="logreg", C=0.1)
    fold = np.arange(y.size) % 6 != 0  # like one of six folds: most of the same rows
    part = fit(X[fold], y[fold], features=cfg, params=params)
    enc = LabelEncoder().fit(y)
    clf = LogisticRegression()
    scaler = StandardScaler().fit(X)
    _warm_start(clf, scaler, part, enc)
    start = scaler.transform(X) @ clf.coef_.T + clf.intercept_
    cols = [list(part.labels).index(c) for c in enc.classes_]
    np.testing.assert_allclose(start, part.network_logits(X)[0][:, cols], atol=1e-8)

    steps: list[int] = []
    original = LogisticRegression.fit

    def counting(self, *a, **k):
        out = original(self, *a, **k)
        steps.append(int(self.n_iter_[0]))
        return out

    monkeypatch.setattr(LogisticRegression, "fit", counting)
    cold = fit(X, y, features=cfg, params=params)
    warm = fit(X, y, features=cfg, params=params, init=part)
    assert steps[1] < steps[0], steps
    # Float32 L-BFGS to its tolerance: probabilities within a point, the same top class almost everywhere.
    np.testing.assert_allclose(warm.predict_proba(X), cold.predict_proba(X), atol=1e-2)
    assert (warm.predict_proba(X).argmax(1) == cold.predict_proba(X).argmax(1)).mean() > 0.99
    # Other classes: no warm start, the same steps as cold.
    keep = y != "calm"
    fit(X[keep], y[keep], features=cfg, params=params)
    fit(X[keep], y[keep], features=cfg, params=params, init=part)
    assert steps[2] == steps[3]
