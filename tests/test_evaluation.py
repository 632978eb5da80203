import json
import shutil

import pytest

from ecgrhythm.cli import main
from ecgrhythm.saving import SPLIT_FILE, load_split, write_split


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
    assert "the model folder has no split.json): NOT a held-out score" in captured.out
    assert "has no split.json" in caplog.text


def test_a_model_trained_on_every_record_is_scored_on_them_and_says_so(tmp_path, cinc2017_dir, tiny_model_dir, capsys, caplog):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns("checkpoint"))
    split = load_split(tiny_model_dir)
    write_split(model, split["train"] + split["val"], [])  # as `train --val-fraction 0` writes it
    folder = _labelled_folder(tmp_path, cinc2017_dir, split["train"][:2] + split["val"][:1])
    out = tmp_path / "r"
    assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "scored 3 records, including any the model was trained on (the model trained on every one of them): NOT a held-out score" in (
        captured.out
    )
    assert "trained on every one of the 3 labelled records" in caplog.text
    info = json.loads((out / "evaluation.json").read_text())["info"]
    assert info["held_out"] is False and info["all_records_trained"] is True and info["excluded_training_records"] == 0

    # The model's held-out records, when the folder has any, are still the only ones scored.
    assert main(["evaluate", "--data", str(folder), "--model", str(tiny_model_dir), "--output", str(out)]) == 0
    assert "excluded 2 records the model was trained on" in capsys.readouterr().out


def test_evaluate_errors_are_one_line(tmp_path, cinc2017_dir, tiny_model_dir, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns("checkpoint"))
    (model / "split.json").write_text("[1, 2")
    folder = _labelled_folder(tmp_path, cinc2017_dir, ["A00001"])
    assert main(["evaluate", "--data", str(folder), "--model", str(model), "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "split.json: invalid split file" in err and len(err.strip().splitlines()) == 1
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
