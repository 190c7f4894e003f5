"""Learning a voice (``ser_core.adapt``) on synthetic vectors: the offset converges, shrinks toward the
population while little is known, ignores a stream's emotion mix, and stores nothing but sums."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser_core.adapt import AdaptConfig, VoiceProfile, class_means, describe, offset, training_offsets

LABELS = ("neutral", "happy", "sad", "angry")
D = 6


@pytest.fixture(scope="module")
def world():
    """Class means of a population, and one voice shifted by ``s`` from it."""
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 3, (len(LABELS), D))
    s = rng.normal(0, 2, D)
    return mu, s


def note(mu, s, label: str, rng, noise: float = 1.0) -> np.ndarray:
    return mu[LABELS.index(label)] + s + rng.normal(0, noise, D)


def onehot(label: str) -> np.ndarray:
    return (np.array(LABELS) == label).astype(float)


def test_the_offset_converges_to_the_voice_and_shrinks_while_little_is_known(world):
    mu, s = world
    rng = np.random.default_rng(1)
    cfg = AdaptConfig(tau=5.0, w_ref=1.0, min_evidence=1)
    profile = VoiceProfile()
    assert offset(profile, mu, LABELS, cfg) is None  # nothing heard: cold
    errors, norms = [], []
    for n in range(1, 201):
        label = LABELS[n % 4]
        profile.add_note(note(mu, s, label, rng), onehot(label), LABELS)
        if n in (1, 5, 20, 200):
            delta = offset(profile, mu, LABELS, cfg)
            errors.append(np.linalg.norm(delta - s))
            norms.append(np.linalg.norm(delta))
    # shrunk toward 0 at first (1 note: 1/6 of the way), then converging on the voice's own shift
    assert norms[0] < 0.5 * np.linalg.norm(s)
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.15 * np.linalg.norm(s)


def test_a_mostly_neutral_stream_does_not_pull_the_offset_away(world):
    """Residuals after each note's believed class mean: the stream's emotion mix does not matter, where a
    plain mean of the notes is pulled toward the neutral mean."""
    mu, s = world
    rng = np.random.default_rng(2)
    cfg = AdaptConfig(tau=0.0, min_evidence=1)
    labels = ["neutral"] * 45 + ["angry", "happy", "sad"] * 5
    profile, plain = VoiceProfile(), []
    for label in labels:
        x = note(mu, s, label, rng, noise=0.3)
        profile.add_note(x, onehot(label), LABELS)
        plain.append(x)
    ours = offset(profile, mu, LABELS, cfg)
    naive = np.mean(plain, axis=0) - mu.mean(axis=0)  # "z-normalise by the notes' mean"
    assert np.linalg.norm(ours - s) < 0.25 * np.linalg.norm(naive - s)


def test_neutral_references_count_like_known_notes_and_weigh_w_ref(world):
    mu, s = world
    rng = np.random.default_rng(3)
    profile = VoiceProfile()
    refs = [note(mu, s, "neutral", rng) for _ in range(3)]
    for x in refs:
        profile.add_reference(x)
    cfg = AdaptConfig(tau=2.0, w_ref=2.0, min_evidence=1)
    expected = 2.0 * (np.sum(refs, axis=0) - 3 * mu[0]) / (2.0 * 3 + 2.0)
    np.testing.assert_allclose(offset(profile, mu, LABELS, cfg), expected)
    assert describe(profile, adapted=True) == "neutral reference 3"
    profile.add_note(refs[0], onehot("neutral"), LABELS)
    assert describe(profile, adapted=True) == "neutral reference 3 + profile 1 note"
    assert describe(profile, adapted=False) == "none"
    assert (
        offset(
            VoiceProfile().add_note(refs[0], onehot("neutral"), LABELS),
            mu,
            LABELS,
            AdaptConfig(min_evidence=2),
        )
        is None
    )


def test_the_profile_is_sums_only_and_a_damaged_or_older_one_is_dropped(world):
    mu, s = world
    rng = np.random.default_rng(4)
    p = VoiceProfile().add_reference(note(mu, s, "neutral", rng))
    p.add_note(note(mu, s, "sad", rng), onehot("sad"), LABELS)
    stored = json.loads(json.dumps(p.to_dict()))
    assert set(stored) == {"v", "k", "ref_sum", "n", "note_sum", "note_q", "labels"}
    back = VoiceProfile.from_dict(stored)
    assert (back.k, back.n, back.labels) == (1, 1, LABELS)
    np.testing.assert_allclose(back.note_sum, p.note_sum)
    assert VoiceProfile.from_dict({"n": 3, "mean": [0.0], "m2": [1.0]}).empty  # the older z-score kind
    assert VoiceProfile.from_dict(stored | {"note_sum": [float("nan")] * D}).empty
    assert VoiceProfile.from_dict(stored | {"note_q": [0.5]}).empty  # probabilities of another class set
    assert VoiceProfile.from_dict(stored | {"k": "x"}).empty
    # a profile of another feature size is not used, and a new note of this size starts it again
    assert offset(back, np.zeros((4, D + 1)), LABELS, AdaptConfig()) is None
    back.add_note(np.ones(D + 1), onehot("sad"), LABELS)
    assert (back.k, back.n, back.dim) == (0, 1, D + 1)


def test_notes_of_a_model_with_other_classes_are_mapped_onto_these(world):
    mu, s = world
    rng = np.random.default_rng(5)
    x = note(mu, s, "sad", rng)
    p = VoiceProfile().add_note(x, np.array([0.0, 1.0]), ("calm", "sad"))
    cfg = AdaptConfig(tau=0.0, min_evidence=1)
    np.testing.assert_allclose(offset(p, mu, LABELS, cfg), x - mu[LABELS.index("sad")])


def test_training_offsets_draw_from_the_rows_own_speaker_and_never_the_row(world):
    mu, s = world
    rng = np.random.default_rng(6)
    X, y, g = [], [], []
    for spk, shift in (("a", s), ("b", -s)):
        for i in range(40):
            label = LABELS[i % 4]
            X.append(note(mu, shift, label, rng, noise=0.01))
            y.append(label)
            g.append(spk)
    X, y, g = np.array(X), np.array(y), np.array(g)
    Q = np.stack([onehot(v) for v in y])
    means = class_means(X, y, LABELS)
    cfg = AdaptConfig(tau=0.0, min_evidence=1)
    off = training_offsets(X, y, g, Q, means, LABELS, cfg, seed=0, contexts=((0, 10), (3, 0)))
    # the population means sit between the two voices: each row's offset points to its own voice's side
    assert np.allclose(off[g == "a"], s, atol=0.05) and np.allclose(off[g == "b"], -s, atol=0.05)
    lone = training_offsets(X[:1], y[:1], g[:1], Q[:1], means, LABELS, cfg, seed=0)
    assert np.all(lone == 0)  # nothing else of its speaker: the raw vector
