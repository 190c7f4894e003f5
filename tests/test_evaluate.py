"""Protocols and metrics."""

from __future__ import annotations

import numpy as np
import pytest

from ser_core.constants import ACTOR_FOLDS
from ser_core.errors import ConfigError
from ser_core.evaluate import cross_validate, metrics, plot_confusion, splits


def test_metrics_by_hand():
    m = metrics(["a", "a", "b", "b", "b", "c"], ["a", "b", "b", "b", "a", "c"], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"] == pytest.approx({"a": 0.5, "b": 2 / 3, "c": 1.0})
    assert m["uar"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    # F1: a: p=1/2 r=1/2 → .5; b: p=2/3 r=2/3; c: 1
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert m["confusion"].tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]


def test_actor_folds_are_disjoint_and_cover_24_actors():
    actors = [a for f in ACTOR_FOLDS for a in f]
    assert sorted(actors) == [f"{i:02d}" for i in range(1, 25)]
    groups = np.repeat(actors, 3)
    y = np.array(["x", "y", "z"] * 24)
    parts = splits("actors", y, groups)
    assert len(parts) == 6
    for _, tr, te in parts:
        assert not set(groups[tr]) & set(groups[te])
    assert sorted(np.concatenate([te for _, _, te in parts]).tolist()) == list(range(72))


def test_other_corpus_folds_by_speaker():
    groups = np.array(["u1", "u2", "u3"] * 4)
    parts = splits("actors", np.array(["a", "b"] * 6), groups)
    assert len(parts) == 3 and all(len(set(groups[te])) == 1 for _, _, te in parts)


def test_random_protocol_is_stratified():
    y = np.array(["a"] * 50 + ["b"] * 50)
    parts = splits("random", y, np.zeros(100))
    assert len(parts) == 5
    for _, _tr, te in parts:
        assert len(te) == 20 and (y[te] == "a").sum() == 10


def test_unknown_protocol():
    with pytest.raises(ConfigError, match="actors, random"):
        splits("loso", np.array(["a"]), np.array(["1"]))


def test_cross_validate_never_sees_test_speakers_in_training(tmp_path):
    actors = [a for f in ACTOR_FOLDS for a in f]
    groups = np.repeat(actors, 4)
    y = np.array(["a", "b"] * 48)
    X = np.zeros((96, 1))
    seen = []

    def fit(Xtr, ytr, gtr):
        seen.append(set(gtr))
        return lambda Xte: np.tile([1.0, 0.0], (len(Xte), 1))

    s = cross_validate("actors", X, y, groups, fit, ["a", "b"])
    assert s.accuracy == 0.5 and s.per_class == {"a": 1.0, "b": 0.0}
    assert all(len(g) == 20 for g in seen)
    plot_confusion(s, str(tmp_path / "cm.png"))
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
