"""One answer per record (`ecgrhythm.episodes.answers`): a long record's label follows its episodes, on real records."""

from __future__ import annotations

import numpy as np
import pytest

from ecgrhythm.episodes.answers import LongRecordAnswer, record_answer, training_length_s
from ecgrhythm.episodes.files import iter_file_episodes
from ecgrhythm.episodes.finder import Episode, RecordEpisodes
from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.inference.streaming import classify_files
from ecgrhythm.records import find_records, read_record


@pytest.fixture(scope="module")
def shipped():
    return RhythmClassifier.load()


def test_on_every_cpsc2021_record_the_label_says_af_exactly_when_the_episodes_find_it(shipped, cpsc2021_dir):
    paths = find_records([cpsc2021_dir])
    answer = LongRecordAnswer(shipped)
    prediction, failures = classify_files(shipped, paths, long_records=answer)
    plain, _ = classify_files(shipped, paths)
    found = {f.record_name: f for f in iter_file_episodes(shipped, paths)}
    assert not failures and prediction.names == plain.names == sorted(found, key=prediction.names.index) and len(found) == 18
    np.testing.assert_array_equal(prediction.probabilities, plain.probabilities)  # the networks' probabilities, unchanged
    long = 0
    for i, name in enumerate(prediction.names):
        if answer.applies(found[name].duration_s):
            long += 1
            assert (prediction.labels[i] == "A") == (found[name].record_class != "non-AF"), name
            assert (prediction.af_burden[i], prediction.record_class[i]) == (found[name].af_burden, found[name].record_class)
        else:  # data_8_4 (41 s) and data_92_12 (49 s): as short as the training records, the networks' answer
            assert prediction.labels[i] == plain.labels[i] and prediction.af_burden[i] is prediction.record_class[i] is None
    assert long == 16
    before = dict(zip(plain.names, plain.labels))
    assert (before["data_101_8"], before["data_84_3"]) == ("O", "N")  # the two contradictions
    assert prediction.labels[prediction.names.index("data_101_8")] == prediction.labels[prediction.names.index("data_84_3")] == "A"


def test_short_records_keep_the_networks_answer(shipped, cinc2017_dir):
    assert training_length_s(shipped) >= 61  # the longest CinC 2017 record is 61 s: every one is classified whole
    paths = sorted(cinc2017_dir.glob("*.hea"))[:9]
    with_rule, _ = classify_files(shipped, paths, long_records=LongRecordAnswer(shipped))
    plain, _ = classify_files(shipped, paths)
    assert with_rule.labels == plain.labels and with_rule.af_burden == with_rule.record_class == [None] * 9
    np.testing.assert_array_equal(with_rule.probabilities, plain.probabilities)


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
