"""Full-budget runs: the finished folds of real crossval folders recorded as study runs, paired fold by fold."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from ecgrhythm.config import PreprocessConfig, TrainConfig
from ecgrhythm.lab.studies import FULL_BUDGET_MODEL, STUDY_FS, Budget, import_crossval, open_store, study_rows, write_report
from ecgrhythm.lab.studies.fullbudget import crossval_variant
from ecgrhythm.lab.studies.store import open_study
from ecgrhythm.training.crossval import RECIPE_FILE, run_crossval
from ecgrhythm.training.folds import fold_dir

SHIPPED_PRE = PreprocessConfig(fs=STUDY_FS, normalization="zscore", bandpass=None)
ONE_EPOCH = TrainConfig(epochs=1, seed=0)  # the shipped training settings, one epoch


def _crossval(folder, out, pre: PreprocessConfig, **kw):
    """Folds 0 and 1 of a 3-fold cross-validation of the shipped recipe with `pre` (and `kw` model changes), one epoch."""
    model = dataclasses.replace(FULL_BUDGET_MODEL, **kw)
    run_crossval(folder, out, n_folds=3, preprocess_config=pre, model_config=model, train_config=ONE_EPOCH, only=[0, 1])
    return out


@pytest.fixture(scope="module")
def two_recipes(tmp_path_factory, small_folder):
    """Real crossval folders of the shipped recipe and of its min-max variant on 72 CinC 2017 records."""
    root = tmp_path_factory.mktemp("fullbudget")
    shipped = _crossval(small_folder, root / "shipped", SHIPPED_PRE)
    minmax = _crossval(small_folder, root / "minmax", dataclasses.replace(SHIPPED_PRE, normalization="minmax"))
    return shipped, minmax


def _store_with_study(tmp_path, name: str):
    store = tmp_path / "store.db"
    setup = {"budget": dataclasses.asdict(Budget()), "split": "test", "n_train": 2000, "n_val": 1088, "margin": 0.01}
    open_study(name, open_store(store), setup, {"data": "cinc2017", "fs": STUDY_FS})
    return store


def test_crossval_folds_are_recorded_as_paired_full_budget_runs(two_recipes, tmp_path):
    shipped, minmax = two_recipes
    store = _store_with_study(tmp_path, "normalization")
    assert import_crossval("normalization", [shipped, minmax], store) == 4
    assert import_crossval("normalization", [shipped, minmax], store) == 0  # already recorded: skipped
    rows, _ = study_rows("normalization", store)
    assert sorted((r["variant"], r["fold"], r["epochs"]) for r in rows) == [
        ("minmax/raw", 0, 1),
        ("minmax/raw", 1, 1),
        ("zscore/raw", 0, 1),
        ("zscore/raw", 1, 1),
    ]
    for r in rows:  # each row is its fold's own training, as the fold's model folder recorded it
        meta = json.loads((fold_dir(shipped if r["variant"] == "zscore/raw" else minmax, r["fold"]) / "config.json").read_text())["metadata"]
        assert r["val_cinc_score"] == round(meta["val_cinc_score"], 5) and r["train_records"] == meta["n_train"] == 48
        assert json.loads(r["config"])["model"]["lstm_layers"] == FULL_BUDGET_MODEL.lstm_layers
    text = write_report("normalization", tmp_path / "out", store)["md"].read_text()
    assert "### 1 epochs, 48 training records (2 folds)" not in text  # one budget only: no per-budget headings
    assert "| minmax/raw | 2 |" in text and "vs zscore/raw" in text
    assert "Not answered yet: the runs so far use 2 fold(s), the answer needs 3." in text


def test_a_crossval_of_another_recipe_or_other_folds_is_refused(two_recipes, tmp_path, small_folder):
    shipped, _ = two_recipes
    store = _store_with_study(tmp_path, "depth")
    assert import_crossval("depth", [shipped], store) == 2  # the shipped network is the depth study's 2xBiLSTM64 on the 8-64 front end
    assert {r["variant"] for r in study_rows("depth", store)[0]} == {"2xBiLSTM64, conv 6 blocks 8-64"}
    recipe = json.loads((shipped / RECIPE_FILE).read_text())
    with pytest.raises(ValueError, match=r"only epochs, seed and patience may differ.*batch_size"):
        crossval_variant("depth", {**recipe, "train": {**recipe["train"], "batch_size": 16}}, "x")
    with pytest.raises(ValueError, match="other settings.*RR channel"):  # an input the studies never varied
        crossval_variant("normalization", {**recipe, "preprocess": {**recipe["preprocess"], "rr_channel": True}}, "x")
    old_default = {**recipe, "train": {**recipe["train"], "patience": 12}}  # the runs of docs/studies: train's patience then
    assert crossval_variant("depth", old_default, "x").name == "2xBiLSTM64, conv 6 blocks 8-64"
    with pytest.raises(ValueError, match="not the shipped recipe with one change of the length study"):
        crossval_variant("length", {**recipe, "model": {**recipe["model"], "lstm_layers": 1}}, "x")
    two_changes = {**recipe, "preprocess": {**recipe["preprocess"], "normalization": "minmax", "bandpass": [0.5, 40.0]}}
    with pytest.raises(ValueError, match="one change of the normalization study"):  # minmax/bandpass is a variant, but two changes away
        crossval_variant("normalization", two_changes, "x")
    with pytest.raises(ValueError, match="one change of the depth study"):
        crossval_variant("depth", {**recipe, "model": {**recipe["model"], "lstm_layers": 4, "lstm_units": 128}}, "x")
    assert crossval_variant("depth", {**recipe, "model": {**recipe["model"], "lstm_layers": 0}}, "x").name == "no LSTM, conv 6 blocks 8-64"
    assert crossval_variant("depth", {**recipe, "train": {**recipe["train"], "val_fraction": 0.3}}, "x").name.startswith("2xBiLSTM64")
    other = tmp_path / "other-folds"
    shutil.copytree(shipped, other)
    folds = json.loads((other / "folds.json").read_text())
    folds["folds"][0], folds["folds"][1] = folds["folds"][1], folds["folds"][0]
    (other / "folds.json").write_text(json.dumps(folds))
    with pytest.raises(ValueError, match="its folds differ from those of the full-budget runs in the store"):
        import_crossval("depth", [other], store)
    with pytest.raises(ValueError, match="has no recorded runs yet"):
        import_crossval("length", [shipped], tmp_path / "empty.db")
