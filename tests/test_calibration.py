"""Temperature scaling: one network's argmax never moves, and an over-confident model gets a lower ECE."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_pooled_temperature_weighs_each_set_not_each_row():
    from ser_core.calibration import fit_temperature_pooled

    near, y_near = _overconfident(n=4000, c=4, seed=1)  # needs T ≈ 4
    far, y_far = _overconfident(n=500, c=6, seed=2)  # other classes; scaled ×4 again, then ×3 more
    far = 3.0 * far
    assert fit_temperature_pooled([(near, y_near, 1.0)]) == fit_temperature(near, y_near)
    T_near, T_far = fit_temperature(near, y_near), fit_temperature(far, y_far)
    assert 3.0 < T_near < 5.5 and T_far > 2 * T_near
    # A weight of zero leaves a set out; equal weights land between the two, though one set is 8× larger.
    assert fit_temperature_pooled([(near, y_near, 1.0), (far, y_far, 0.0)]) == pytest.approx(T_near, rel=1e-3)
    T_half = fit_temperature_pooled([(near, y_near, 0.5), (far, y_far, 0.5)])
    assert T_near * 1.3 < T_half < T_far * 0.95
    # Weighing by rows instead would sit much nearer the large set.
    by_rows = fit_temperature_pooled([(near, y_near, 4000.0), (far, y_far, 500.0)])
    assert by_rows < T_half
