"""The run store and the report: a published CSV imported, reported back unchanged, conflicts refused, budgets side by side."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest

from ecgrhythm.lab.studies import FULL_BUDGET_MODEL, Budget, add_note, import_csv, study_rows, summarise, write_report

DOCS = Path(__file__).resolve().parents[3] / "docs" / "studies"


def _published(name: str) -> tuple[list[dict], list[str]]:
    with open(DOCS / f"{name}.csv", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader), list(reader.fieldnames)


def _write(path: Path, rows: list[dict], fields: list[str]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _setup(rows: list[dict]) -> tuple[dict, dict]:
    """The setup the published runs were recorded with, as far as the CSV tells it (the split digest aside)."""
    discarded = max(float(r["signal_discarded"]) for r in rows)
    setup = {
        "budget": dataclasses.asdict(Budget(epochs=int(rows[0]["epochs"]), train_records=int(rows[0]["train_records"]))),
        "split": "published",
        "n_train": int(rows[0]["train_records"]),
        "n_val": int(rows[0]["val_records"]),
        "margin": 0.01,
    }
    return setup, {"data": "/data/cinc2017", "fs": 150.0, "crop_pad_discards": {"share_of_signal": discarded, "share_of_records_cut": 0.2}}


@pytest.mark.parametrize("name", ["length", "normalization", "depth"])
def test_published_csv_imports_and_reports_back_unchanged(name, tmp_path):
    rows, fields = _published(name)
    setup, info = _setup(rows)
    assert import_csv(name, DOCS / f"{name}.csv", tmp_path / "a.db", setup, info) == len(rows)
    first = write_report(name, tmp_path / "a", tmp_path / "a.db")
    written = first["csv"].read_text()
    if "fold" not in fields:  # published before runs had folds: the report adds the column, empty
        fields.insert(fields.index("seed") + 1, "fold")
        _write(tmp_path / "expected.csv", [{**r, "fold": ""} for r in rows], fields)
        assert written == (tmp_path / "expected.csv").read_text()
    # and round again: the written CSV imports into a new store and reports byte for byte the same
    assert import_csv(name, first["csv"], tmp_path / "b.db", setup, info) == len(rows)
    second = write_report(name, tmp_path / "b", tmp_path / "b.db")
    assert second["csv"].read_text() == written and second["md"].read_text() == first["md"].read_text()


def test_import_refuses_conflicts_and_skips_what_is_recorded(tmp_path):
    rows, fields = _published("length")
    setup, info = _setup(rows)
    store = tmp_path / "store.db"
    assert import_csv("length", DOCS / "length.csv", store, setup, info) == len(rows)
    assert import_csv("length", DOCS / "length.csv", store, setup, info) == 0  # the same runs again: nothing added
    changed = [dict(r) for r in rows]
    changed[3]["val_cinc_score"] = str(float(changed[3]["val_cinc_score"]) + 0.01)
    changed.append({**rows[0], "seed": "7"})  # a new run in the same file: not added either, as the file is refused
    with pytest.raises(ValueError, match=r"changed.csv line 5: run '\w+' seed \d is recorded in the store with other val_cinc_score"):
        import_csv("length", _write(tmp_path / "changed.csv", changed, fields), store, setup, info)
    unknown = [{**rows[0], "variant": "spline"}]
    with pytest.raises(ValueError, match=r"unknown.csv line 2: unknown length variant 'spline'"):
        import_csv("length", _write(tmp_path / "unknown.csv", unknown, fields), store, setup, info)
    other_model = [{**rows[0], "config": rows[0]["config"].replace('"lstm_units": 64', '"lstm_units": 32')}]
    with pytest.raises(ValueError, match="not what this version runs"):
        import_csv("length", _write(tmp_path / "model.csv", other_model, fields), store, setup, info)
    with pytest.raises(ValueError, match=r"the setup has .*give the setup the same epochs"):
        import_csv("length", DOCS / "length.csv", tmp_path / "other.db", {**setup, "budget": dataclasses.asdict(Budget(epochs=9))}, info)
    assert len(study_rows("length", store)[0]) == len(rows)
    for _ in range(2):  # a note kept once, however often it is given
        add_note("length", "Runs shared the CPU.", store)
    assert study_rows("length", store)[1]["notes"] == ["Runs shared the CPU."]


def _full_budget_config(config: str) -> str:
    """A published row's config with the shipped network, as full-budget runs record it."""
    parsed = json.loads(config)
    parsed["model"] = {**parsed["model"], **json.loads(json.dumps(FULL_BUDGET_MODEL.to_dict()))}
    return json.dumps(parsed, sort_keys=True)


def test_report_shows_budgets_side_by_side(tmp_path):
    """Runs of a second budget (folds of a cross-validation, one seed) get their own answer and table, the larger budget first."""
    rows, fields = _published("length")
    rows = [r for r in rows if not r.get("fold")]  # the published reduced-budget runs; the fold runs are made up here
    fields = [*fields, "fold"] if "fold" not in fields else fields
    setup, info = _setup(rows)
    store = tmp_path / "store.db"
    import_csv("length", _write(tmp_path / "reduced.csv", rows, fields), store, setup, info)
    full = [
        {
            **r,
            "fold": r["seed"],
            "seed": "0",
            "epochs": "15",
            "train_records": str(5799 + int(r["seed"] == "2")),  # folds differ by a record: still one budget
            "val_records": "1450",
            "val_cinc_score": f"{float(r['val_cinc_score']) + 0.3:.5f}",
            "config": _full_budget_config(r["config"]),
        }
        for r in rows
    ]
    assert import_csv("length", _write(tmp_path / "full.csv", full, fields), store, setup, info) == len(rows)
    with pytest.raises(ValueError, match="not what this version runs"):  # a fold row with the reduced budget's network
        import_csv("length", _write(tmp_path / "small-net.csv", [{**full[0], "config": rows[0]["config"]}], fields), tmp_path / "x.db", setup, info)
    paths = write_report("length", tmp_path / "out", store)
    text = paths["md"].read_text()
    big, small = text.index("### 15 epochs, 5,799-5,800 training records (3 folds)"), text.index("### 4 epochs, 2,000 training records (3 seeds)")
    assert big < small and text.count("### 15 epochs") == 2  # in the answer and in the results
    assert "Paired fold by fold with `bucket_mask`" in text and "(mean ± SD over 3 folds)" in text
    assert "- Full budget (15 epochs, 5,799-5,800 training records (3 folds)): each run is one fold of `ecgrhythm crossval`" in text
    by_budget = {}
    for r in csv.DictReader(io.StringIO(paths["csv"].read_text())):
        by_budget.setdefault(r["epochs"], set()).add(r["fold"])
    assert by_budget == {"4": {""}, "15": {"0", "1", "2"}}
    best = {}
    for epochs in ("4", "15"):
        means = {}
        for r in full if epochs == "15" else rows:
            means.setdefault(r["variant"], []).append(float(r["val_cinc_score"]))
        best[epochs] = max(means, key=lambda v: np.mean(means[v]))
    assert f"The best mean at 15 epochs ({best['15']}) is the same setting as at 4 epochs ({best['4']})." in text


def test_summary_pairs_runs_by_seed_with_the_reference():
    rows = [
        {
            "variant": v,
            "seed": seed,
            "val_cinc_score": score,
            "parameters": 1,
            "config": "{}",
            "f1_N": 0,
            "f1_A": 0,
            "f1_O": 0,
            "f1_~": 0,
            "seconds_per_epoch": 1.0,
            "inference_records_per_s": 1.0,
        }
        for v, scores in {"ref": [0.50, 0.60, 0.55], "worse": [0.45, 0.56, 0.49]}.items()
        for seed, score in enumerate(scores)
    ]
    summary = {s["variant"]: s for s in summarise(rows, "ref")}
    assert summary["worse"]["delta"] == pytest.approx(-0.05)
    from scipy.stats import ttest_rel

    assert summary["worse"]["p"] == pytest.approx(ttest_rel([0.45, 0.56, 0.49], [0.50, 0.60, 0.55]).pvalue)
    assert np.isnan(summary["ref"]["delta"])
    assert summary["ref"]["sd"] == pytest.approx(np.std([0.50, 0.60, 0.55], ddof=1))
    # runs of the same seed in different folds are different replicates: paired fold by fold
    folds = [{**r, "fold": r["seed"], "seed": 0} for r in rows]
    assert {s["variant"]: s["delta"] for s in summarise(folds, "ref")}["worse"] == pytest.approx(-0.05)
