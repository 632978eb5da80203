"""The ectopy guard of the lab: which A calls it moves, where they go, and that each fold's choice never sees the fold."""

import numpy as np
import pytest

from ecgrhythm.features.rhythm import rhythm_features
from ecgrhythm.lab.ectopy import insert_premature_beats
from ecgrhythm.lab.ectopy_guard import (
    BEGIN,
    END,
    LOOSE_RULE,
    LogisticGuard,
    choose_rule,
    cross_validate,
    guarded,
    rule_moves,
    write_section,
)
from ecgrhythm.preprocessing.rpeaks import detect_beats
from ecgrhythm.records import read_record

CLASSES = ["N", "A", "O", "~"]
CHOSEN = (0.12, 0.3, True)  # the rule cross-validation chose on all 5 folds (docs/results/ectopy_guard.json)


def _features(record_features: list[dict]) -> dict:
    return {k: np.array([f[k] for f in record_features]) for k in record_features[0]}


@pytest.fixture(scope="module")
def real(cinc2017_dir):
    """Features of A00006 (N, regular, looked at by eye), A00006 with premature beats inserted, and A00004 (AF)."""
    record = read_record(cinc2017_dir / "A00006")
    x = record.signal[:, 0].astype(np.float64)
    y, _ = insert_premature_beats(x, record.fs, detect_beats(x, record.fs), seed=0)
    af = read_record(cinc2017_dir / "A00004")
    return _features([rhythm_features(x, record.fs), rhythm_features(y, record.fs), rhythm_features(af.signal[:, 0], af.fs)])


def test_the_rule_moves_premature_beats_on_a_regular_rhythm_but_not_af(real):
    says_a = np.ones(3, dtype=bool)
    assert rule_moves(real, says_a, CHOSEN).tolist() == [False, True, False]  # no premature beat: kept; ectopy: moved; AF: kept
    assert rule_moves(real, np.zeros(3, dtype=bool), CHOSEN).tolist() == [False] * 3  # only A calls are moved
    assert rule_moves(real, says_a, None).tolist() == [False] * 3
    assert rule_moves(real, says_a, LOOSE_RULE)[2]  # the loose rule takes this AF record too: why it costs A sensitivity


def test_guarded_gives_the_most_probable_other_class():
    probs = np.array([[0.1, 0.6, 0.25, 0.05], [0.05, 0.5, 0.05, 0.4], [0.2, 0.7, 0.05, 0.05]])
    out = guarded(probs, np.array([True, True, False]), a=1)
    assert out.argmax(axis=1).tolist() == [2, 3, 1]
    assert np.array_equal(out[2], probs[2]) and probs[0, 1] == 0.6  # the others and the input unchanged


def _hand_made(seed=0, n_per_fold=60, first_fold_times=1):
    """5 folds of rows called A: true A (irregular, no repeating P wave) and N with ectopy (regular, P waves); N, O, ~ rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for fold in range(5):
        for i in range(n_per_fold * (first_fold_times if fold == 0 else 1)):
            kind = i % 3  # 0, 1: true A called A; 2: N with ectopy called A
            regular = rng.uniform(0.2, 0.4) if kind < 2 else rng.uniform(0.02, 0.08)
            p_corr = rng.uniform(-0.1, 0.4) if kind < 2 else rng.uniform(0.85, 0.95)
            rows.append((fold, 1 if kind < 2 else 0, [0.3, 0.6, 0.08, 0.02], regular, p_corr, 0.1))
        rows += [(fold, 0, [0.8, 0.1, 0.08, 0.02], 0.03, 0.9, 0.0)] * 40  # N called N
        rows += [(fold, 2, [0.1, 0.1, 0.75, 0.05], 0.1, 0.5, 0.0)] * 10 + [(fold, 3, [0.1, 0.1, 0.1, 0.7], 0.5, 0.0, 0.0)] * 5  # O, noise
    folds, targets, probs, reg, pc, prem = (np.array(c) for c in zip(*rows))
    return probs.astype(float), {"regular_nrmssd": reg, "p_corr": pc, "premature_share": prem, "cosen": -reg}, targets, folds


def test_choose_rule_moves_ectopy_and_no_guard_when_it_cannot_help():
    probs, features, targets, _ = _hand_made()
    rule = choose_rule(probs, features, targets, CLASSES)
    moved = rule_moves(features, probs.argmax(axis=1) == 1, rule)
    assert moved[targets == 0].sum() == 60 * 5 / 3 and not moved[targets == 1].any()
    af_like = dict(features, p_corr=np.full(len(targets), 0.95), regular_nrmssd=np.full(len(targets), 0.05))  # A looks like ectopy
    assert choose_rule(probs, af_like, targets, CLASSES) is None  # every rule would move true A as well


@pytest.mark.parametrize("kind", ["rule", "logistic"])
def test_each_fold_is_guarded_by_a_choice_made_without_its_labels(kind):
    probs, features, targets, folds = _hand_made(first_fold_times=8)
    first = cross_validate(probs, features, targets, folds, CLASSES, kind)
    assert first["moved"][0] == 160 and first["moved_true_a"] == [0] * 5  # every ectopy row of fold 0, no true A
    changed = targets.copy()
    changed[folds == 0] = 1  # fold 0 (the largest) all A: a guard chosen with its labels would move nothing
    second = cross_validate(probs, features, changed, folds, CLASSES, kind)
    assert second["choices"][0] == first["choices"][0] and second["moved"][0] == first["moved"][0]


def test_the_logistic_guard_refuses_when_the_features_do_not_separate():
    probs, features, targets, folds = _hand_made()
    noise = np.random.default_rng(1).uniform(size=len(targets))
    same = {k: noise for k in features}
    guard = LogisticGuard().fit(probs, same, targets, folds, CLASSES)
    assert guard.threshold_ is None and not guard.moves(same, np.ones(len(targets), dtype=bool)).any()


def test_write_section_replaces_its_block_and_keeps_the_rest(tmp_path):
    page = tmp_path / "ectopy.md"
    page.write_text("# Page\n\nhand-written\n", encoding="utf-8")
    write_section(page, f"{BEGIN}\nfirst\n{END}")
    write_section(page, f"{BEGIN}\nsecond\n{END}")
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Page\n\nhand-written\n") and "second" in text and "first" not in text and text.count(BEGIN) == 1
