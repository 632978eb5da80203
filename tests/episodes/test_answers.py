"""One answer per record (`ecgrhythm.episodes.answers`): a long record's label follows its episodes, on real records."""

from __future__ import annotations

import numpy as np
import pytest

from ecgrhythm.episodes.answers import LongRecordAnswer, record_answer, training_length_s
from ecgrhythm.episodes.files import iter_file_episodes
from ecgrhythm.episodes.finder import Episode, RecordEpisodes
from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.inference.streaming import classify_files
from ecgrhythm.records import read_record


@pytest.fixture(scope="module")
def shipped():
    return RhythmClassifier.load()


CPSC2021_FEW = ("data_92_12", "data_8_4", "data_101_8")  # 49 s and 41 s (as short as the training records), 121 s


def test_on_cpsc2021_records_the_label_the_class_and_the_episodes_agree(shipped, cpsc2021_dir):
    paths = [cpsc2021_dir / f"{name}.hea" for name in CPSC2021_FEW]
    answer = LongRecordAnswer(shipped)
    prediction, failures = classify_files(shipped, paths, long_records=answer)
    plain, _ = classify_files(shipped, paths)
    found = {f.record_name: f for f in iter_file_episodes(shipped, paths)}  # what `ecgrhythm episodes` writes
    assert not failures and prediction.names == plain.names == list(found) == list(CPSC2021_FEW)
    np.testing.assert_array_equal(prediction.probabilities, plain.probabilities)  # the networks' probabilities, unchanged
    for i, name in enumerate(prediction.names):
        assert (prediction.labels[i] == "A") == (found[name].record_class != "non-AF"), name
        if answer.applies(found[name].duration_s):
            assert (prediction.af_burden[i], prediction.record_class[i]) == (found[name].af_burden, found[name].record_class)
        else:  # as short as the training records: the networks' answer, and the episodes follow it
            assert prediction.labels[i] == plain.labels[i] and prediction.af_burden[i] is prediction.record_class[i] is None
    assert [answer.applies(f.duration_s) for f in found.values()] == [False, False, True]


def test_on_every_cpsc2021_record_the_label_and_the_episodes_agree(shipped, cpsc2021_dir):
    paths = sorted(cpsc2021_dir.glob("*.hea"))  # the 18 records of the sample, 41 s to 7 min
    prediction, failures = classify_files(shipped, paths, long_records=LongRecordAnswer(shipped))
    found = {f.record_name: f for f in iter_file_episodes(shipped, paths)}
    assert not failures and len(paths) == len(found) == 18
    disagree = [n for n, label in zip(prediction.names, prediction.labels) if (label == "A") != (found[n].record_class != "non-AF")]
    assert disagree == []


def test_predict_records_gives_the_answer_of_classify_files(shipped, cpsc2021_dir):
    paths = [cpsc2021_dir / f"{name}.hea" for name in ("data_101_8", "data_92_12")]
    streamed, _ = classify_files(shipped, paths, long_records=LongRecordAnswer(shipped))
    direct = shipped.predict_records(paths, long_records=LongRecordAnswer(shipped))
    assert (direct.names, direct.labels, direct.leads) == (streamed.names, streamed.labels, streamed.leads)
    assert (direct.af_burden, direct.record_class) == (streamed.af_burden, streamed.record_class)
    assert direct.record_class[0] is not None and direct.record_class[1] is None  # 121 s answered from its episodes, 49 s not
    np.testing.assert_allclose(direct.probabilities, streamed.probabilities, atol=1e-6)
    plain = shipped.predict_records(paths)  # without the rule: the networks' labels
    assert plain.labels == shipped.predict([read_record(p) for p in paths]) and plain.record_class == [None, None]


def test_short_records_keep_the_networks_answer(shipped, cinc2017_dir):
    assert training_length_s(shipped) >= 61  # the longest CinC 2017 record is 61 s: every one is classified whole
    paths = sorted(cinc2017_dir.glob("*.hea"))[:9]
    with_rule, _ = classify_files(shipped, paths, long_records=LongRecordAnswer(shipped))
    plain, _ = classify_files(shipped, paths)
    assert with_rule.labels == plain.labels and with_rule.af_burden == with_rule.record_class == [None] * 9
    np.testing.assert_array_equal(with_rule.probabilities, plain.probabilities)


def test_for_a_record_seen_whole_the_episodes_follow_the_networks_label():
    classes = ["N", "A", "O", "~"]
    found = RecordEpisodes("r", "I", 200.0, 10_000, [Episode(0.0, 10.0, "O", 0.6), Episode(10.0, 30.0, "A", 0.7), Episode(30.0, 50.0, "O", 0.8)])
    answer = record_answer(np.array([0.1, 0.2, 0.6, 0.1]), classes, found, whole=True)
    assert (answer.label, answer.af_burden, answer.record_class) == ("O", 0.0, "non-AF")
    # the AF stretch becomes O at the record's P(O), joined to its neighbours, weighted by time: (10 * 0.6 + 20 * 0.6 + 20 * 0.8) / 50
    assert answer.episodes.episodes == [Episode(0.0, 50.0, "O", pytest.approx(0.68))]
    no_af = RecordEpisodes("r", "I", 200.0, 6_000, [Episode(0.0, 30.0, "N", 0.9)])
    answer = record_answer(np.array([0.1, 0.7, 0.15, 0.05]), classes, no_af, whole=True)
    assert (answer.label, answer.af_burden, answer.record_class) == ("A", 1.0, "persistent")
    assert answer.episodes.episodes == [Episode(0.0, 30.0, "A", 0.7)]
    assert record_answer(np.array([0.1, 0.2, 0.6, 0.1]), classes, no_af, whole=True).episodes is no_af  # they agree already
    strong = record_answer(np.array([0.1, 0.2, 0.6, 0.1]), classes, found, whole=True, strong_af_s=20.0)
    assert (strong.label, strong.record_class, strong.episodes) == ("A", "paroxysmal", found)  # 20 s of AF decides


def test_the_rule_takes_af_from_the_episodes_and_the_other_classes_from_the_probabilities():
    classes = ["N", "A", "O", "~"]
    probs = np.array([0.2, 0.5, 0.25, 0.05])
    without = RecordEpisodes("r", "I", 200.0, 24_000, [Episode(0.0, 120.0, "O", 0.6)])
    answer = record_answer(probs, classes, without)
    assert (answer.label, answer.af_burden, answer.record_class) == ("O", 0.0, "non-AF")  # A is the most probable, but no AF found
    with_af = RecordEpisodes("r", "I", 200.0, 24_000, [Episode(0.0, 30.0, "N", 0.9), Episode(30.0, 120.0, "A", 0.7)])
    answer = record_answer(np.array([0.7, 0.05, 0.2, 0.05]), classes, with_af)
    assert (answer.label, answer.af_burden, answer.record_class) == ("A", 0.75, "paroxysmal")


def test_a_record_whose_episodes_fail_is_a_failure_not_a_label(shipped, cpsc2021_dir):
    class Broken(LongRecordAnswer):
        def __call__(self, source, probabilities, *, lead=None, progress=None):
            raise RuntimeError("no beats")

    header = cpsc2021_dir / "data_101_6.hea"
    prediction, failures = classify_files(shipped, [header, cpsc2021_dir / "data_8_4.hea"], long_records=Broken(shipped))
    assert prediction.names == ["data_8_4"] and failures == [(str(header), "its episodes cannot be found (RuntimeError: no beats)")]
    assert read_record(header).duration_s > training_length_s(shipped)
