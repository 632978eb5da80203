"""The depth study: "start simple, add layers", automated, then width, direction and front end at the depth reached."""

from __future__ import annotations

import dataclasses

from ecgrhythm.lab.studies.base import BASE_MODEL, FULL_BUDGET_MODEL, Study, Variant, pm, register_study

__all__ = ["DepthStudy", "depth_variant", "depth_plan", "chosen_depth", "FRONT_ENDS", "DEFAULT_FRONT_END", "MAX_LAYERS"]

FRONT_ENDS = {
    "6 blocks 16-128": (16, 32, 48, 64, 96, 128),
    "6 blocks 8-64": (8, 16, 24, 32, 48, 64),
    "5 blocks 16-96": (16, 32, 48, 64, 96),
}
DEFAULT_FRONT_END = "6 blocks 16-128"
MAX_LAYERS = 4


def depth_variant(layers: int, units: int = 64, bidirectional: bool = True, front_end: str = DEFAULT_FRONT_END) -> Variant:
    """A depth-study network: `layers` LSTM layers of `units` per direction after a front end."""
    name = f"{layers}x{'Bi' if bidirectional else ''}LSTM{units}" if layers else "no LSTM"
    if front_end != DEFAULT_FRONT_END:
        name += f", conv {front_end}"
    params = {"lstm_layers": layers, "lstm_units": units, "bidirectional": bidirectional, "front_end": front_end}
    model = dataclasses.replace(BASE_MODEL, conv_filters=FRONT_ENDS[front_end], lstm_layers=layers, lstm_units=units, bidirectional=bidirectional)
    return Variant(name, params, model=model)


def _full_budget_variant() -> Variant:
    """The shipped network as a depth variant."""
    m = FULL_BUDGET_MODEL
    front_end = next(name for name, filters in FRONT_ENDS.items() if filters == m.conv_filters)
    return depth_variant(m.lstm_layers, m.lstm_units, m.bidirectional, front_end)


def depth_plan(means: dict[str, float], margin: float) -> list[Variant]:
    """The networks the "start simple, add layers" procedure has asked for, given the
    mean scores of the finished ones (`means`: name -> mean over seeds).

    1. One BiLSTM layer; add a layer while the mean score improves by more than `margin`.
    2. At the depth reached: narrower and wider layers, and one direction only.
    3. At that depth: two other convolutional front ends, and no LSTM at all (a reference).

    A step is asked for only once every network of the step before has a mean.
    """
    plan = [depth_variant(1)]
    layers = 1
    while True:
        if depth_variant(layers).name not in means:
            return plan
        if layers == MAX_LAYERS:
            break
        deeper = depth_variant(layers + 1)
        plan.append(deeper)
        if deeper.name not in means:
            return plan
        if means[deeper.name] <= means[depth_variant(layers).name] + margin:
            break
        layers += 1
    stage2 = [depth_variant(layers, 32), depth_variant(layers, 128), depth_variant(layers, 64, bidirectional=False)]
    plan += stage2
    if any(v.name not in means for v in stage2):
        return plan
    plan += [depth_variant(layers, front_end=f) for f in FRONT_ENDS if f != DEFAULT_FRONT_END] + [depth_variant(0)]
    return plan


def chosen_depth(means: dict[str, float], margin: float, front_end: str = DEFAULT_FRONT_END) -> int:
    """The number of layers at which the adding stopped (the deeper network did not beat it by `margin`, or was not run)."""
    layers = 1
    while layers < MAX_LAYERS:
        a, b = depth_variant(layers, front_end=front_end).name, depth_variant(layers + 1, front_end=front_end).name
        if a not in means or b not in means or means[b] <= means[a] + margin:
            break
        layers += 1
    return layers


@register_study
class DepthStudy(Study):
    name = "depth"
    question = "How deep should the LSTM network be?"
    factor = "network depth and width"
    reference = depth_variant(1).name

    def variants(self):
        lstm = [depth_variant(n, u, b, f) for n in range(1, MAX_LAYERS + 1) for u in (32, 64, 128) for b in (True, False) for f in FRONT_ENDS]
        return lstm + [depth_variant(0, front_end=f) for f in FRONT_ENDS]

    def plan(self, means, margin):
        return depth_plan(means, margin)

    def full_budget_variants(self):
        return self.variants()  # the shipped network is among them (front end 8-64)

    def same_setting(self, a, b):
        keys = ("lstm_layers", "lstm_units", "bidirectional")  # the front end differs between the budgets' networks
        return all(a.get(k) == b.get(k) for k in keys)

    def full_budget_reference(self):
        return _full_budget_variant().name

    def distributions(self):
        from optuna.distributions import CategoricalDistribution, IntDistribution

        from ecgrhythm.networks.family import MAX_RECURRENT_LAYERS, MAX_UNITS

        return {  # the ranges a network of the family may have (ecgrhythm.networks.family), not wider
            "lstm_layers": IntDistribution(0, MAX_RECURRENT_LAYERS),
            "lstm_units": IntDistribution(1, MAX_UNITS),
            "bidirectional": CategoricalDistribution([True, False]),
            "front_end": CategoricalDistribution(list(FRONT_ENDS)),
        }

    def answer(self, complete, close, margin, reference):
        means = {s["variant"]: s["mean"] for s in complete}
        front_end = next((s["config"]["front_end"] for s in complete if s["variant"] == reference), DEFAULT_FRONT_END)
        layers = chosen_depth(means, margin, front_end)
        deeper = depth_variant(layers + 1, front_end=front_end).name
        if depth_variant(layers, front_end=front_end).name not in means:
            lines = [f"Adding layers: not answered yet, {layers} LSTM layer(s) on this front end were not run with every replicate."]
        else:
            why = f"the next layer did not raise the mean by more than {margin:g}" if deeper in means else f"{layers + 1} layers were not run"
            lines = [f"Adding layers stopped at **{layers}** LSTM layer(s): {why}."]
        lstm = [s for s in close if s["config"].get("lstm_layers", 1) > 0]
        if lstm:
            lean = min(lstm, key=lambda s: s["parameters"])
            lines.append(f"Leanest LSTM network within the margin of the best: **{lean['variant']}** ({lean['parameters']:,} parameters).")
        for s in (s for s in complete if s["config"].get("lstm_layers", 1) == 0):
            verdict = "within" if s in close else "outside"
            lines.append(
                f"The front end without any LSTM ({s['parameters']:,} parameters) scores {pm(s['mean'], s['sd'])}, {verdict} the margin of the best."
            )
        return lines

    def compared(self, setup):
        return [
            'The "start simple, add layers" procedure, automated (`ecgrhythm.lab.studies.depth_plan`):',
            f"1. One bidirectional LSTM layer of 64 units per direction after the default front end ({DEFAULT_FRONT_END} filters); "
            f"add a layer while the mean score improves by more than the margin (at most {MAX_LAYERS}).",
            "2. At the depth reached: 32 and 128 units, and one direction only.",
            f"3. At that depth: other convolutional front ends ({', '.join(f for f in FRONT_ENDS if f != DEFAULT_FRONT_END)}), "
            "and the front end alone without an LSTM, as a reference.",
            "The answer picks the LSTM network with the fewest parameters whose mean is within the margin of the best mean.",
        ]
