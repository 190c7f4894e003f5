"""Temperature scaling: one network's argmax never moves, and an over-confident model gets a lower ECE."""

from __future__ import annotations

import numpy as np

from ser_core.calibration import ece, ensemble_probs, fit_temperature, reliability_diagram


def _overconfident(n=2000, c=4, seed=0):
    """True logits give calibrated probabilities; the 'model' reports them scaled ×4 (over-confident)."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 1.0, size=(n, c))
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(c, p=row) for row in p])
    return 4.0 * true_logits[None], y


def test_temperature_recovers_the_scale_and_lowers_ece(tmp_path):
    logits, y = _overconfident()
    T = fit_temperature(logits, y)
    assert 3.0 < T < 5.5
    before, after = ensemble_probs(logits, 1.0), ensemble_probs(logits, T)
    assert ece(after, y) < ece(before, y) / 2
    assert (before.argmax(1) == after.argmax(1)).all()
    png = tmp_path / "rel.png"
    reliability_diagram({"before": (before, y), "after": (after, y)}, str(png))
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_ece_of_a_perfectly_calibrated_and_a_wrong_model():
    y = np.array([0, 1] * 50)
    sure_right = np.eye(2)[y]
    assert ece(sure_right, y) == 0.0
    assert ece(np.eye(2)[1 - y], y) == 1.0


def test_ensemble_temperature_is_per_network():
    logits = np.array([[[2.0, 0.0]], [[0.0, 2.0]]])  # two networks that disagree
    np.testing.assert_allclose(ensemble_probs(logits, 1.0), [[0.5, 0.5]])
