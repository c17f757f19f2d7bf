import numpy as np
import pytest

from digitrec.core.constants import UNSURE_BELOW
from digitrec.data import Digits
from digitrec.inference.calibration import fit_temperature
from digitrec.inference.metrics import evaluate, expected_calibration_error, wilson_interval


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), table I: 81 of 263 -> 0.2553-0.3662; and the edges stay inside [0, 1].
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(0, 0) == (0.0, 0.0)
    assert wilson_interval(9970, 10000)[0] < 0.997 < wilson_interval(9970, 10000)[1]


def test_per_class_scores_and_confusion_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.full((6, 10), 0.01)
    probabilities[np.arange(6), predicted] = 0.91
    result = evaluate(probabilities, Digits(np.zeros((6, 28, 28), np.uint8), labels, "hand"))
    assert result.accuracy == pytest.approx(4 / 6) and result.n == 6
    assert result.confusion[0, 0] == 2 and result.confusion[0, 1] == 1 and result.confusion[1, 2] == 1
    rows = {r["digit"]: r for r in result.per_class()}
    assert rows[0]["precision"] == 1.0 and rows[0]["recall"] == pytest.approx(2 / 3)
    assert rows[1]["precision"] == pytest.approx(1 / 2) and rows[1]["recall"] == pytest.approx(1 / 2)
    assert rows[2]["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5) and rows[2]["support"] == 1
    assert rows[5] == {"digit": 5, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # The loss is the mean negative log-probability of the true digit.
    expected_loss = -np.mean(np.log([0.91, 0.91, 0.01, 0.91, 0.01, 0.91]))
    assert result.loss == pytest.approx(expected_loss)
    summary = result.as_dict()
    assert summary["errors"] == 2 and summary["accuracy_ci95"] == list(result.interval95)


def test_temperature_scaling_finds_the_temperature_that_made_the_data():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 10))
    true_t = 2.5
    p = np.exp(logits / true_t)
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(10, p=row) for row in p])
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.1)
    # Calibrated, the confidences match the accuracy; overconfident raw logits do not.
    raw = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert expected_calibration_error(p, labels) < 0.03 < expected_calibration_error(raw, labels)


def test_expected_calibration_error_by_hand():
    # Two bins: confidence 0.95 with 10 right of 10 (gap 0.05), confidence 0.55 with 5 of 10 (gap 0.05).
    probabilities = np.full((20, 10), 0.005)
    probabilities[:10, 0], probabilities[10:, 0] = 0.955, 0.555
    probabilities[10:, 1] = 0.4
    labels = np.array([0] * 10 + [0] * 5 + [1] * 5)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.5 * 0.045 + 0.5 * 0.055)


def test_unsure_readings_are_counted_apart():
    probabilities = np.full((4, 10), 0.0)
    probabilities[0, 3], probabilities[1, 3], probabilities[2, 5], probabilities[3, 5] = 0.99, 0.98, 0.5, 0.6
    probabilities[2, 1], probabilities[3, 2] = 0.5, 0.4
    result = evaluate(probabilities, Digits(np.zeros((4, 28, 28), np.uint8), np.array([3, 4, 5, 2]), "t"))
    unsure = result.unsure()
    assert unsure["threshold"] == UNSURE_BELOW and unsure["share_unsure"] == 0.5
    assert unsure["accuracy_when_sure"] == 0.5  # of the two sure readings, one is right
