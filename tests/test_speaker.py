"""Speaker profiles: Welford statistics, JSON round trip, normalisation."""

from __future__ import annotations

import json

import numpy as np

from ser_core.speaker import VAR_FLOOR, SpeakerProfile, normalize_by_speaker


def test_running_stats_match_numpy():
    X = np.random.default_rng(0).normal(3, 2, size=(50, 4))
    p = SpeakerProfile.of(X)
    assert p.n == 50
    np.testing.assert_allclose(p.mean, X.mean(0))
    np.testing.assert_allclose(p.var, X.var(0, ddof=1))


def test_json_round_trip_and_damaged_profile():
    p = SpeakerProfile.of(np.arange(12.0).reshape(4, 3))
    q = SpeakerProfile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q.n == 4 and np.allclose(q.mean, p.mean) and np.allclose(q.m2, p.m2)
    assert SpeakerProfile.from_dict({"n": 2, "mean": [1, 2], "m2": [1]}).n == 0
    assert SpeakerProfile.from_dict({"n": 2, "mean": [float("nan")], "m2": [1]}).n == 0


def test_normalize_uses_floor_and_population_variance():
    pop = np.array([4.0, 4.0])
    one = SpeakerProfile.of(np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(one.normalize(np.array([[3.0, 5.0]]), pop), [[1.0, 2.0]])  # one note: pop var
    flat = SpeakerProfile.of(np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]))
    np.testing.assert_allclose(
        flat.normalize(np.array([[1.0, 1.0]]), pop), [[0.0, 1 / np.sqrt(VAR_FLOOR * 4)]]
    )


def test_normalize_by_speaker_removes_speaker_offsets():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(10, 1, (30, 2))])
    g = np.array(["a"] * 30 + ["b"] * 30)
    Z = normalize_by_speaker(X, g)
    for s in "ab":
        np.testing.assert_allclose(Z[g == s].mean(0), 0, atol=1e-9)
