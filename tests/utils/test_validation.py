import numpy as np
import pytest

from ecgrhythm.utils.validation import check_positive_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1)])
def test_whole_numbers_of_at_least_one_pass(value):
    check_positive_int("n", value)


@pytest.mark.parametrize("value", [0, -2, True, False, 2.0, 1.5, "3", None, np.float64(2.0)])
def test_anything_else_is_refused_with_the_name_and_value(value):
    with pytest.raises(ValueError, match=r"Invalid argument `n`: expected a positive integer\. Received: n="):
        check_positive_int("n", value)


def test_none_passes_only_when_optional():
    check_positive_int("n", None, optional=True)
    with pytest.raises(ValueError, match="a positive integer or None"):
        check_positive_int("n", 0, optional=True)


def test_stages_share_the_check():
    from ecgrhythm.episodes.finder import EpisodeParams

    with pytest.raises(ValueError, match="`networks`"):
        EpisodeParams(networks=True)
    assert EpisodeParams(networks=np.int64(2)).networks == 2
    assert EpisodeParams(networks=None).networks is None
