import json
import shutil

import numpy as np
import pytest

from ecgrhythm.cli import main
from ecgrhythm.networks.split import SPLIT_FILE, load_split, write_split


@pytest.fixture(autouse=True)
def _no_compilation_cache(monkeypatch):
    """Keep in-process runs from writing a JAX cache into the home folder."""
    monkeypatch.setenv("ECGRHYTHM_JAX_CACHE", "off")


def _labelled_folder(tmp_path, cinc2017_dir, names, extra_reference=()):
    """A labelled folder with copies of real records and their REFERENCE.csv rows."""
    from ecgrhythm.records import read_reference

    folder = tmp_path / "data"
    folder.mkdir()
    reference = read_reference(cinc2017_dir / "REFERENCE.csv")
    for name in names:
        for suffix in (".hea", ".mat"):
            shutil.copy(cinc2017_dir / f"{name}{suffix}", folder)
    rows = [f"{n},{reference[n]}" for n in names] + list(extra_reference)
    (folder / "REFERENCE.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_evaluate_scores_held_out_records_by_default(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    split = load_split(tiny_model_dir)
    train, val = split["train"][:3], split["val"][:4]
    folder = _labelled_folder(tmp_path, cinc2017_dir, train + val, extra_reference=["Z99999,N"])
    (folder / "Z99999.hea").write_text("Z99999 1 300 9000\nZ99999.mat 16 1000 16 0 0 0 0 ECG\n")  # signal file missing
    out = tmp_path / "report"

    # One record cannot be scored: the outputs are written without it, and the exit status says so.
    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1 labelled records could not be scored" in captured.err
    assert "excluded 3 records the model was trained on" in captured.out
    assert "scored 4 held-out records (1 could not be scored)" in captured.out
    assert "CinC 2017 score" in captured.out and "confusion matrix" in captured.out
    assert "cannot score" in captured.err and "Z99999.hea" in captured.err and "Traceback" not in captured.err
    data = json.loads((out / "evaluation.json").read_text())
    assert data["n_records"] == 4 and data["info"]["held_out"] is True
    assert data["info"]["excluded_training_records"] == 3 and data["info"]["failed_records"] == 1
    assert 0 <= data["ece"] <= 1 and sum(data["calibration"]["count"]) == 4
    assert f"top-class expected calibration error (15 bins): {data['ece']:.4f}" in captured.out
    assert (out / "evaluation.png").read_bytes().startswith(b"\x89PNG")
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0] == "record,label,true_label,lead,N,A,O,~"
    assert sorted(r.split(",")[0] for r in rows[1:]) == sorted(val)

    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out), "--all-records"]) == 1
    captured = capsys.readouterr()
    assert "scored 7 records, including any the model was trained on (--all-records): NOT a held-out score" in captured.out
    assert json.loads((out / "evaluation.json").read_text())["n_records"] == 7


def test_evaluate_without_split_file_says_the_score_is_not_held_out(tmp_path, cinc2017_dir, tiny_model_dir, capsys, caplog):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns("split.json", "checkpoint"))
    folder = _labelled_folder(tmp_path, cinc2017_dir, load_split(tiny_model_dir)["train"][:2])
    assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert f"scored 2 records, including any the model was trained on ({model} has no split.json) (0 could not be scored)" in captured.out
    assert "has no split.json: the records the model was trained on are unknown, so the score may not be a held-out score" in caplog.text
    assert "held-out score" not in captured.out  # the library's warning says it, once


def test_a_model_trained_on_every_record_is_scored_on_them_and_says_so(tmp_path, cinc2017_dir, tiny_model_dir, capsys, caplog):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns("checkpoint"))
    split = load_split(tiny_model_dir)
    write_split(model, split["train"] + split["val"], [])  # as `train --val-fraction 0` writes it
    folder = _labelled_folder(tmp_path, cinc2017_dir, split["train"][:2] + split["val"][:1])
    out = tmp_path / "r"
    assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "scored 3 records, every one of which the model was trained on (0 could not be scored)" in captured.out
    assert "trained on every one of the 3 labelled records" in caplog.text and "NOT a held-out score" in caplog.text
    assert "held-out score" not in captured.out  # the library's warning says it, once
    info = json.loads((out / "evaluation.json").read_text())["info"]
    assert info["held_out"] is False and info["all_records_trained"] is True and info["excluded_training_records"] == 0

    # The model's held-out records, when the folder has any, are still the only ones scored.
    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out)]) == 0
    assert "excluded 2 records the model was trained on" in capsys.readouterr().out
    # A model with validation records, on a folder of its training records only: the same, not an error.
    (tmp_path / "trained").mkdir()
    only_trained = _labelled_folder(tmp_path / "trained", cinc2017_dir, split["train"][:2])
    assert main(["evaluate", "--data", str(only_trained), "--model", str(tiny_model_dir), "--output", str(out)]) == 0
    assert "scored 2 records, every one of which the model was trained on" in capsys.readouterr().out


def test_evaluate_errors_are_one_line(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns("checkpoint"))
    (model / "split.json").write_text("[1, 2")
    folder = _labelled_folder(tmp_path, cinc2017_dir, ["A00001"])
    assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "split.json: invalid split file" in err and len(err.strip().splitlines()) == 1
    assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(tmp_path / "r"), "--all-records"]) == 0  # as it says
    assert "scored 1 records" in capsys.readouterr().out
    shutil.rmtree(tmp_path / "r")
    assert main(["evaluate", "--data", str(tmp_path / "nowhere"), "--model", str(tiny_model_dir)]) == 2
    assert "REFERENCE.csv" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_evaluate_fails_with_a_clear_message_when_no_record_can_be_scored(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    split = load_split(tiny_model_dir)
    folder = _labelled_folder(tmp_path, cinc2017_dir, split["train"][:2] + split["val"][:2])
    for name in split["val"][:2]:
        (folder / f"{name}.mat").write_bytes(b"not a MATLAB file")
    out = tmp_path / "r"
    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if "cannot score" in line and split["val"][0] in line]
    assert "no labelled record could be scored: 2 could not be read or classified" in err[-1]
    assert "2 left out as the model's training records" in err[-1] and not out.exists()


def test_split_file_round_trip(tmp_path):
    assert load_split(tmp_path) is None
    path = write_split(tmp_path, ["A00001", "A00002"], ["A00003"])
    assert path == tmp_path / SPLIT_FILE and path.read_text() == '{"train": ["A00001", "A00002"], "val": ["A00003"]}\n'
    assert load_split(tmp_path) == {"train": ["A00001", "A00002"], "val": ["A00003"]}
    path.write_text('{"train": "A00001"}')
    with pytest.raises(ValueError, match="invalid split file"):
        load_split(tmp_path)


def test_evaluate_refuses_an_output_folder_it_reads_or_a_foreign_predictions_csv(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    folder = _labelled_folder(tmp_path, cinc2017_dir, load_split(tiny_model_dir)["val"][:2])
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    link = tmp_path / "data-link"
    link.symlink_to(folder)
    for out, what in ((folder, "data folder"), (link, "data folder"), (tiny_model_dir, "model folder")):
        assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--output {out} is the {what}" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and not (tiny_model_dir / "evaluation.json").exists()
    out = tmp_path / "reports"
    out.mkdir()
    (out / "predictions.csv").write_text("patient,notes\n1,keep me\n")
    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out)]) == 2
    assert "predictions.csv exists and is not an ecgrhythm output" in capsys.readouterr().err
    assert (out / "predictions.csv").read_text() == "patient,notes\n1,keep me\n"
    (out / "predictions.csv").unlink()  # an earlier evaluate's outputs are replaced on the next run
    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out)]) == 0
    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out)]) == 0


def _rewritten(onnx_file, out, key, value=None):
    """A copy of an exported file whose metadata `key` is the JSON text `value` (None: no such key, as in older exports)."""
    import onnx

    model = onnx.load(onnx_file)
    kept = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    if value is not None:
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, out)
    return out


def test_evaluate_an_onnx_file_leaves_out_its_training_records_as_its_folder(tmp_path, cinc2017_dir, tiny_model_dir, onnx_file, capsys):
    split = load_split(tiny_model_dir)
    folder = _labelled_folder(tmp_path, cinc2017_dir, split["train"][:3] + split["val"][:5])
    reports = {}
    for model in (tiny_model_dir, onnx_file):
        out = tmp_path / model.name
        assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(out)]) == 0
        reports[model.suffix] = json.loads((out / "evaluation.json").read_text()), (out / "predictions.csv").read_text().splitlines()
    assert "excluded 3 records the model was trained on (split in its metadata); scored 5 held-out records" in capsys.readouterr().out
    (folder_report, folder_rows), (onnx_report, onnx_rows) = reports[""], reports[".onnx"]
    assert onnx_report["info"]["held_out"] is True and onnx_report["info"]["excluded_training_records"] == 3
    assert onnx_report["info"]["model"] == str(onnx_file) and onnx_report["n_records"] == folder_report["n_records"] == 5
    assert [r.split(",")[:3] for r in onnx_rows] == [r.split(",")[:3] for r in folder_rows]  # same records, labels and truth
    assert sorted(r.split(",")[0] for r in onnx_rows[1:]) == sorted(split["val"][:5])
    got = np.array([[float(v) for v in r.split(",")[4:]] for r in onnx_rows[1:]])
    expected = np.array([[float(v) for v in r.split(",")[4:]] for r in folder_rows[1:]])
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert onnx_report["score"] == pytest.approx(folder_report["score"]) and onnx_report["ece"] == pytest.approx(folder_report["ece"], abs=1e-3)


def test_evaluate_an_onnx_file_without_a_split_or_with_every_record_trained(tmp_path, cinc2017_dir, tiny_model_dir, onnx_file, capsys, caplog):
    split = load_split(tiny_model_dir)
    folder = _labelled_folder(tmp_path, cinc2017_dir, split["train"][:2] + split["val"][:1])
    old = _rewritten(onnx_file, tmp_path / "old.onnx", "split")  # exported before the metadata carried the split
    assert main(["evaluate", "--data", str(folder), "--model", str(old), "--output", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert f"scored 3 records, including any the model was trained on ({old} has no split in its metadata)" in out
    assert "held-out score" not in out  # the library's warning says it, once
    assert f"{old} has no split in its metadata: the records the model was trained on are unknown" in caplog.text
    info = json.loads((tmp_path / "r" / "evaluation.json").read_text())["info"]
    assert info["held_out"] is False and info["excluded_training_records"] == 0 and info["labelled_records"] == 3

    every = json.dumps({"train": split["train"] + split["val"], "val": []})  # as exported from a `train --val-fraction 0` folder
    trained = _rewritten(onnx_file, tmp_path / "every.onnx", "split", every)
    assert main(["evaluate", "--data", str(folder), "--model", str(trained), "--output", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "scored 3 records, every one of which the model was trained on" in out and "held-out score" not in out
    assert f"{trained} trained on every one of the 3 labelled records of {folder}, so all are scored: NOT a held-out score" in caplog.text
    info = json.loads((tmp_path / "r" / "evaluation.json").read_text())["info"]
    assert info["held_out"] is False and info["all_records_trained"] is True


def test_a_damaged_split_in_onnx_metadata_fails_clearly(tmp_path, cinc2017_dir, onnx_file, capsys):
    folder = _labelled_folder(tmp_path, cinc2017_dir, ["A00001"])
    for value, message in (
        ('{"train": "A00001"}', "bad.onnx: invalid split in its metadata (expected {'train': [names], 'val': [names]}); export the model again"),
        ('{"train": ["A00001"', "bad.onnx: damaged metadata"),
    ):
        bad = _rewritten(onnx_file, tmp_path / "bad.onnx", "split", value)
        assert main(["evaluate", "--data", str(folder), "--model", str(bad), "--output", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
    # As the message says, --all-records scores every record without the split (damaged JSON stops the file loading at all).
    bad = _rewritten(onnx_file, tmp_path / "bad.onnx", "split", '{"train": "A00001"}')
    assert main(["evaluate", "--data", str(folder), "--model", str(bad), "--output", str(tmp_path / "r"), "--all-records"]) == 0
    assert "scored 1 records, including any the model was trained on (--all-records)" in capsys.readouterr().out
