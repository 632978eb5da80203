import numpy as np
import pytest

from ecgrhythm.scoring.calibration import (
    MIN_PREDICTED_ROWS,
    apply_class_prior,
    apply_temperature,
    calibrate_probabilities,
    checked_class_prior,
    class_frequencies,
    fit_temperature,
    top_class_calibration,
)
from ecgrhythm.scoring.crossval import cross_fitted_prior


def test_ece_of_records_each_alone_in_its_bin():
    # Top-class probabilities 0.9 (right), 0.75 (wrong), 0.7 (right), 0.65 (right) fall in bins 13, 11, 10 and 9 of 15:
    # ECE = (|1 - 0.9| + |0 - 0.75| + |1 - 0.7| + |1 - 0.65|) / 4 = (0.1 + 0.75 + 0.3 + 0.35) / 4 = 0.375
    probs = [[0.9, 0.1], [0.75, 0.25], [0.3, 0.7], [0.35, 0.65]]
    calibration = top_class_calibration(probs, [0, 1, 1, 1])
    assert calibration.ece == pytest.approx(0.375)
    assert calibration.count.tolist() == [0] * 9 + [1, 1, 1, 0, 1, 0]
    assert calibration.accuracy[11] == 0.0 and calibration.confidence[10] == pytest.approx(0.7)
    assert np.isnan(calibration.confidence[0]) and calibration.edges[[0, -1]].tolist() == [0.0, 1.0]
    data = calibration.to_dict()
    assert data["confidence"][0] is None and data["count"][13] == 1 and data["bins"] == 15


def test_ece_averages_within_a_bin():
    # 0.9 (right) and 0.92 (wrong) share bin 13 (0.867, 0.933]: accuracy 1/2, confidence 0.91 -> gap 0.41, weight 2/3;
    # 0.5 (right, ties go to the first class) in bin 7 (0.467, 0.533]: gap 0.5, weight 1/3. ECE = 0.82/3 + 0.5/3 = 0.44
    probs = [[0.9, 0.1, 0.0], [0.04, 0.04, 0.92], [0.5, 0.5, 0.0]]
    calibration = top_class_calibration(probs, [0, 1, 0])
    assert calibration.ece == pytest.approx((2 * 0.41 + 0.5) / 3)
    assert calibration.accuracy[13] == 0.5 and calibration.confidence[13] == pytest.approx(0.91)
    assert top_class_calibration(probs, [0, 2, 0], n_bins=1).ece == pytest.approx(abs(1 - (0.9 + 0.92 + 0.5) / 3))


def test_calibration_refuses_bad_inputs():
    with pytest.raises(ValueError, match="targets.shape"):
        top_class_calibration([[0.5, 0.5]], [0, 1])
    with pytest.raises(ValueError, match="class indices 0 to 1"):
        top_class_calibration([[0.5, 0.5]], [2])
    with pytest.raises(ValueError, match="n_bins"):
        top_class_calibration([[0.5, 0.5]], [0], n_bins=0)


def _over_confident(n_records=200, n_classes=4, confidence=0.95, accuracy=0.7, seed=0):
    """Probabilities whose top class always has `confidence` but is right for only `accuracy` of the records."""
    rng = np.random.default_rng(seed)
    return _predicting(rng.integers(0, n_classes, n_records), n_classes, confidence, accuracy, rng)


def _predicting(top, n_classes, confidence, accuracy, rng):
    """Rows whose top class `top` `(n_records,)` has `confidence`, right for the first `accuracy` of them (the others: another class)."""
    n_records = len(top)
    probs = np.full((n_records, n_classes), (1 - confidence) / (n_classes - 1))
    probs[np.arange(n_records), top] = confidence
    wrong = np.arange(n_records) >= round(accuracy * n_records)
    targets = np.where(wrong, (top + 1 + rng.integers(0, n_classes - 1, n_records)) % n_classes, top)
    return probs, targets


def test_temperature_scaling_lowers_the_ece_of_over_confident_probabilities():
    probs, targets = _over_confident()
    before = top_class_calibration(probs, targets).ece
    assert before == pytest.approx(0.95 - 0.7)
    temperature = fit_temperature(probs, targets)
    assert temperature.shape == () and temperature > 1  # over-confident: softened
    scaled = apply_temperature(probs, temperature)
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    assert (scaled.argmax(axis=1) == probs.argmax(axis=1)).all()  # one temperature keeps every decision
    assert top_class_calibration(scaled, targets).ece < 0.01 < before
    per_class = fit_temperature(probs, targets, per_class=True)
    assert per_class.shape == (4,) and (per_class > 1).all()
    assert top_class_calibration(apply_temperature(probs, per_class), targets).ece < 0.05


def test_a_temperature_per_predicted_class_keeps_every_label_and_calibrates_each_predicted_class():
    rng = np.random.default_rng(0)
    parts = [
        _predicting(np.zeros(300, dtype=int), 4, 0.7, 0.95, rng),  # predicted N: under-confident
        _predicting(rng.integers(1, 3, 200), 4, 0.95, 0.7, rng),  # predicted A or O: over-confident
        _predicting(np.full(MIN_PREDICTED_ROWS - 1, 3), 4, 0.95, 0.7, rng),  # ~: too rarely predicted to fit
    ]
    probs, targets = np.vstack([p for p, _ in parts]), np.concatenate([t for _, t in parts])
    by_predicted = fit_temperature(probs, targets, per_predicted_class=True)
    assert by_predicted.shape == (4,) and by_predicted[0] < 1 < by_predicted[1] and by_predicted[2] > 1 and by_predicted[3] == 1.0
    scaled = apply_temperature(probs, by_predicted, per_predicted_class=True)
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    assert (scaled.argmax(axis=1) == probs.argmax(axis=1)).all()
    np.testing.assert_allclose(scaled[-(MIN_PREDICTED_ROWS - 1) :], probs[-(MIN_PREDICTED_ROWS - 1) :], atol=1e-12)  # T = 1: unchanged
    unscaled = top_class_calibration(probs, targets).ece
    single = top_class_calibration(apply_temperature(probs, fit_temperature(probs, targets)), targets).ece
    assert top_class_calibration(scaled, targets).ece < 0.02 < min(single, unscaled) / 5  # one temperature cannot fix both directions
    # a class never predicted keeps T = 1; tied rows keep their first maximum, whatever their temperatures
    never = fit_temperature(probs[:500], targets[:500], per_predicted_class=True)
    assert never[3] == 1.0 and never[0] == pytest.approx(by_predicted[0], rel=1e-3)
    ties = np.array([[0.4, 0.4, 0.1, 0.1], [0.1, 0.3, 0.3, 0.3], [0.25, 0.25, 0.25, 0.25]])
    for temperature in ([0.2, 5.0, 1.0, 1.0], [5.0, 0.2, 3.0, 0.5]):
        tied = apply_temperature(ties, temperature, per_predicted_class=True)
        assert (tied.argmax(axis=1) == ties.argmax(axis=1)).all()
        np.testing.assert_allclose(tied[:, :2][0], tied[0, 0])  # still tied
    with pytest.raises(ValueError, match="exclusive"):
        fit_temperature(probs, targets, per_class=True, per_predicted_class=True)
    with pytest.raises(ValueError, match="one per predicted class"):
        apply_temperature(probs, 1.5, per_predicted_class=True)


def test_temperature_one_is_the_identity_and_calibrated_probabilities_keep_it():
    probs, targets = _over_confident(n_classes=2, confidence=0.7, accuracy=0.7)
    np.testing.assert_allclose(apply_temperature(probs, 1.0), probs, atol=1e-12)
    assert fit_temperature(probs, targets) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(probs, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(probs, 0.0)


def _balanced_network_outputs(n: int, prior, seed: int = 0):
    """Records of classes drawn with `prior`, each a 1-D feature x ~ Normal(class index, 1), with the outputs an ideal
    network trained with balanced class weights gives (the posterior under equal priors: the normalised likelihoods),
    and the true posterior under `prior`."""
    rng = np.random.default_rng(seed)
    targets = rng.choice(len(prior), size=n, p=prior)
    x = rng.normal(targets.astype(float), 1.0)
    likelihood = np.exp(-0.5 * (x[:, None] - np.arange(len(prior))[None, :]) ** 2)
    balanced = likelihood / likelihood.sum(axis=1, keepdims=True)
    posterior = likelihood * prior / (likelihood * prior).sum(axis=1, keepdims=True)
    return targets, balanced, posterior


def test_the_class_prior_gives_a_balanced_networks_outputs_back_the_posterior_under_the_training_prior():
    prior = np.array([0.6, 0.09, 0.28, 0.03])  # about CinC 2017's N, A, O, ~
    targets, balanced, posterior = _balanced_network_outputs(20_000, prior)
    frequencies = class_frequencies(targets, 4)
    np.testing.assert_allclose(frequencies, prior, atol=0.01)
    corrected = apply_class_prior(balanced, frequencies)
    np.testing.assert_allclose(corrected.sum(axis=1), 1.0)
    assert np.abs(corrected - posterior).max() < 0.02 and np.abs(balanced - posterior).max() > 0.3
    accuracy = lambda probs: np.mean(probs.argmax(axis=1) == targets)  # noqa: E731
    assert accuracy(corrected) > accuracy(balanced) + 0.05  # the Bayes decision under the real prior
    assert top_class_calibration(corrected, targets).ece < 0.02 < top_class_calibration(balanced, targets).ece
    # Cross-fitted, each fold corrected by the other folds' frequencies: the same, as every fold has the same prior.
    folds = np.arange(len(targets)) % 5
    np.testing.assert_allclose(cross_fitted_prior(balanced, targets, folds), corrected, atol=0.01)
    # Folds of different class mixes: each fold's rows get exactly the other folds' frequencies, never their own.
    folds = np.arange(len(targets)) % 3
    folds[(targets == 0) & (folds == 2)] = 0  # fold 2 holds no N record, fold 0 twice its share
    crossed = cross_fitted_prior(balanced, targets, folds)
    for k in range(3):
        others = class_frequencies(targets[folds != k], 4)
        np.testing.assert_allclose(crossed[folds == k], apply_class_prior(balanced[folds == k], others))
    # A model's calibration applies the prior first, then the temperature.
    np.testing.assert_allclose(calibrate_probabilities(balanced, class_prior=frequencies, temperature=2.0), apply_temperature(corrected, 2.0))
    assert calibrate_probabilities(balanced) is balanced


def test_prior_correction_refuses_what_is_not_a_prior():
    with pytest.raises(ValueError, match=r"classes \[2\] have no record"):
        class_frequencies([0, 1, 3, 3], 4)
    with pytest.raises(ValueError, match="expected class indices 0 to 3"):
        class_frequencies([0, 4], 4)
    for prior in ([0.5, 0.5, 0.0], [0.5, 0.5], [0.5, -0.1, 0.6]):
        with pytest.raises(ValueError, match="one positive prior per class"):
            apply_class_prior([[0.2, 0.3, 0.5]], prior)
    assert checked_class_prior(None, 3, "config.json") is None
    assert checked_class_prior([0.5, 0.25, 0.25], 3, "config.json") == [0.5, 0.25, 0.25]
    assert checked_class_prior([0.5953, 0.0888, 0.2832, 0.0326], 4, "config.json")[3] == 0.0326  # rounded by hand: sum 0.9999
    for value in ([0.5, 0.5, 0.5], [0.5, 0.5], [True, 0.5, 0.5], "0.3 0.3 0.4", ["0.3", "0.3", "0.4"], [0.0, 0.5, 0.5], [np.nan, 0.5, 0.5], 1.0):
        with pytest.raises(ValueError, match='invalid "class_prior" in config.json'):
            checked_class_prior(value, 3, "config.json")
    with pytest.raises(ValueError, match=r"\(sum 1.5\)"):
        checked_class_prior([0.5, 0.5, 0.5], 3, "config.json")
