"""The settings of the AF episode finder (:mod:`ecgrhythm.episodes.finder`), and the AF class's label."""

from __future__ import annotations

import dataclasses
import math

from ecgrhythm.utils.validation import check_positive_int

__all__ = ["EpisodeParams", "DEFAULT_PARAMS", "AF_LABEL", "METHODS"]

AF_LABEL = "A"
METHODS = ("windows", "beats")


@dataclasses.dataclass(frozen=True)
class EpisodeParams:
    """Settings of the episode finder (defaults fitted as the :mod:`ecgrhythm.episodes.finder` docstring says).

    Args:
        window_s: window length in seconds (the model saw 9-60 s records).
        hop_s: seconds between window starts.
        batch_windows: windows prepared together, and run in one network call on a backend that takes any batch
            (onnxruntime; on Keras in batches of the classifier's `batch_size`).
        switch_prob: (`method="windows"` only) HMM probability of a change of rhythm from one window to the next.
        emission_scale: (`method="windows"` only) weight of a window's AF log-odds as HMM evidence
            (below 1: overlapping windows are not independent evidence).
        emission_bias: (`method="windows"` only) log-odds added to every window's evidence (negative: AF needs more evidence).
        refine_s: (`method="windows"` only) half width (s) of the stretch searched for the beat of a change.
        irregularity: (`method="windows"` only) relative successive RR difference that separates AF (above) from other rhythms.
        pull: (`method="windows"` only) cost per second of moving a change away from where the windows put it.
        min_af_beats: shortest AF episode, in beats.
        persistent_burden: AF burden from which the whole record is AF (persistent AF in the CPSC 2021 sense).
        method: `"beats"` (each beat's R-R tagger log-odds, P waves and the network's windows combined per beat, Viterbi
            over the beats: :mod:`ecgrhythm.episodes.beats`) or `"windows"` (the hidden Markov model over windows,
            then changes moved onto beats).
        beat_switch_cost: with `method="beats"`, the cost (log-odds) of each change of state between beats.
        beat_bias: with `method="beats"`, log-odds added to every beat's AF evidence (the prior of AF for a beat).
        networks: the windows' probabilities are the mean of the model folder's first `networks` networks
            (`None`: all). The settings were fitted on one network's probabilities, so an ensemble folder
            finds episodes with its first network (and at its speed), as does its ONNX file (the graph's
            first network's output).

    Raises:
        ValueError: a setting out of its range, naming the argument, the expected value and the one received.

    Example:
        >>> import ecgrhythm
        >>> stricter = ecgrhythm.EpisodeParams(min_af_beats=10)    # pass it as `params=` to record_episodes
        >>> stricter.min_af_beats, stricter.window_s
        (10, 10.0)
        >>> ecgrhythm.EpisodeParams(min_af_beats=0)
        Traceback (most recent call last):
        ...
        ValueError: Invalid argument `min_af_beats`: expected a positive integer. Received: min_af_beats=0
        >>> per_beat = ecgrhythm.EpisodeParams(method="beats")     # AF decided beat by beat (ecgrhythm.episodes.beats)
        >>> per_beat.beat_switch_cost, per_beat.beat_bias
        (20.0, 0.0)
    """

    window_s: float = 10.0
    hop_s: float = 4.0
    batch_windows: int = 64
    switch_prob: float = 0.01
    emission_scale: float = 1.0
    emission_bias: float = 0.0
    refine_s: float = 6.0
    irregularity: float = 0.1
    pull: float = 0.2
    min_af_beats: int = 5
    persistent_burden: float = 0.85
    networks: int | None = 1
    method: str = "beats"
    beat_switch_cost: float = 20.0
    beat_bias: float = 0.0

    def __post_init__(self):
        for name in ("window_s", "hop_s", "refine_s", "irregularity", "emission_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"Invalid argument `{name}`: expected a positive number. Received: {name}={value!r}")
        if not 0 < self.switch_prob < 0.5:
            raise ValueError(f"Invalid argument `switch_prob`: expected a probability in (0, 0.5). Received: switch_prob={self.switch_prob!r}")
        if self.hop_s > self.window_s:
            raise ValueError(f"Invalid argument `hop_s`: expected at most window_s={self.window_s}. Received: hop_s={self.hop_s!r}")
        if not (isinstance(self.pull, (int, float)) and math.isfinite(self.pull) and self.pull >= 0):
            raise ValueError(f"Invalid argument `pull`: expected a number >= 0. Received: pull={self.pull!r}")
        if not 0 < self.persistent_burden <= 1:
            raise ValueError(
                f"Invalid argument `persistent_burden`: expected a share in (0, 1]. Received: persistent_burden={self.persistent_burden!r}"
            )
        if self.method not in METHODS:
            raise ValueError(f"Invalid argument `method`: expected one of {METHODS}. Received: method={self.method!r}")
        if not (isinstance(self.beat_switch_cost, (int, float)) and math.isfinite(self.beat_switch_cost) and self.beat_switch_cost >= 0):
            raise ValueError(f"Invalid argument `beat_switch_cost`: expected a number >= 0. Received: beat_switch_cost={self.beat_switch_cost!r}")
        if not (isinstance(self.beat_bias, (int, float)) and math.isfinite(self.beat_bias)):
            raise ValueError(f"Invalid argument `beat_bias`: expected a finite number. Received: beat_bias={self.beat_bias!r}")
        check_positive_int("batch_windows", self.batch_windows)
        check_positive_int("min_af_beats", self.min_af_beats)
        check_positive_int("networks", self.networks, optional=True)


DEFAULT_PARAMS = EpisodeParams()  # the settings of every function of the finder that is given none
