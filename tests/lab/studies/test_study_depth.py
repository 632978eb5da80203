"""The depth study's "start simple, add layers" plan."""

from __future__ import annotations

from ecgrhythm.lab.studies import STUDIES, chosen_depth, depth_plan, depth_variant


def test_depth_plan_adds_layers_while_the_score_improves():
    one, two, three = (depth_variant(n).name for n in (1, 2, 3))
    assert [v.name for v in depth_plan({}, 0.01)] == [one]
    assert [v.name for v in depth_plan({one: 0.70}, 0.01)] == [one, two]
    assert [v.name for v in depth_plan({one: 0.70, two: 0.75}, 0.01)] == [one, two, three]
    means = {one: 0.70, two: 0.75, three: 0.755}  # the third layer gains less than the margin
    plan = depth_plan(means, 0.01)
    assert chosen_depth(means, 0.01) == 2
    stage2 = [v for v in plan if v.name not in means]
    assert {v.model.lstm_layers for v in stage2} == {2}
    assert {(v.model.lstm_units, v.model.bidirectional) for v in stage2} == {(32, True), (128, True), (64, False)}
    means.update({v.name: 0.7 for v in stage2})
    stage3 = [v for v in depth_plan(means, 0.01) if v.name not in means]
    assert {v.model.lstm_layers for v in stage3} == {2, 0}
    assert len({v.model.conv_filters for v in stage3}) == 3
    # a second layer that does not help stops the adding at one
    assert chosen_depth({one: 0.70, two: 0.705}, 0.01) == 1
    # every planned network is one the study knows (the CLI's --variants and the CSV import check against these)
    known = {v.name for v in STUDIES["depth"].variants()}
    assert {v.name for v in plan} <= known and STUDIES["depth"].reference == one
