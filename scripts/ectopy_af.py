"""How often the shipped model calls sinus rhythm with premature beats, or a fast or slow sinus rhythm, AF.

Three sets, each classified by the shipped model (`RhythmClassifier.load()`, the same road as `ecgrhythm classify`):

1. the CinC 2021 12-lead sample (500 Hz, another device): the records labelled with premature beats (PAC, PVC, SVPB,
   VPB, BPAC) and those with sinus tachycardia, bradycardia or arrhythmia (STach, SB, SA) and no premature beat,
   each classified on the lead the model chooses (lead I unless unusable, as `classify` does) and on each of its 12
   leads alone; the sample holds no AF or flutter record, so no sensitivity there;
2. AF sensitivity on another device: the CPSC 2021 sample's persistent-AF records (and its non-AF ones), whole, on the
   chosen lead; and on CinC 2017's A records (in the shipped model's training set: optimistic);
3. records "by the rules of the rhythm": CinC 2017 N records of 30 s with every 4 to 7 beats one beat moved early by
   25 % (and 35 %) of its interval, followed by a compensatory pause
   (:func:`ecgrhythm.lab.ectopy.insert_premature_beats`), against the same records unchanged. The shipped model was
   trained on these records (unchanged), so it knows them as N.

Then how well single rhythm features (:func:`ecgrhythm.features.rhythm.rhythm_features`) separate those ectopy records
from AF records: the area under the ROC curve of each feature, AF against ectopy. Writes `docs/results/ectopy.md` and
`docs/results/ectopy.json`. Example (from the repository root; about 5 minutes on 2 cores):

    python scripts/ectopy_af.py --n 200
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

import ecgrhythm
from ecgrhythm.features.rhythm import FEATURE_NAMES, rhythm_features
from ecgrhythm.lab.ectopy import ECTOPY, SINUS, insert_premature_beats, scp_labels
from ecgrhythm.lab.stacking import feature_table, fit_booster, member_probabilities, stacked_oof
from ecgrhythm.lab.stacking_report import NOTES, PAIR
from ecgrhythm.preprocessing.rpeaks import detect_beats
from ecgrhythm.records.core import EcgRecord
from ecgrhythm.records.reference import read_reference
from ecgrhythm.scoring.calibration import apply_class_prior, class_frequencies
from ecgrhythm.scoring.crossval import cross_fitted_prior
from ecgrhythm.utils.io import atomic_write_text

FEATURES = ("madsd", "nrmssd", "cosen", "regular_nrmssd", "premature_share", "p_corr", "p_amplitude", "f_wave")
COMMAND = "python scripts/ectopy_af.py --n {n}"


def _share_a(labels) -> float:
    return float(np.mean([label == "A" for label in labels])) if len(labels) else float("nan")


def cinc2021(clf, folder: Path) -> dict:
    """Each record's group, the chosen lead's label and each lead's label, and the chosen lead's features."""
    rows = []
    for header in sorted(folder.glob("*.hea")):
        labels = scp_labels(header)
        group = "ectopy" if set(labels) & set(ECTOPY) else "sinus rate" if set(labels) & set(SINUS) else "other"
        record = ecgrhythm.read_record(header)
        taken, lead = clf.choose_lead(record)
        chosen = clf.predict_records([taken]).labels[0]
        leads = [EcgRecord(record.signal[:, [k]], record.fs, (name,), f"{record.record_name}-{name}") for k, name in enumerate(record.sig_name)]
        each = clf.predict_records(leads).labels
        feats = rhythm_features(taken.signal[:, 0], taken.fs)
        rows.append(
            {
                "record": record.record_name,
                "dx": labels,
                "group": group,
                "lead": lead,
                "label": chosen,
                "leads_a": sum(x == "A" for x in each),
                "features": feats,
            }
        )
    return {"records": rows}


def cpsc2021(clf, folder: Path) -> list[dict]:
    """The label `ecgrhythm classify` gives each CPSC 2021 sample record (a record over the networks' training length
    answered from its AF episodes), with its class from the header."""
    from ecgrhythm.episodes.answers import LongRecordAnswer

    rule, rows = LongRecordAnswer(clf), []
    for header in sorted(folder.glob("*.hea")):
        record = ecgrhythm.read_record(header)
        kind = next((c.strip("# ").strip() for c in record.comments if "fibrillation" in c), "")
        rows.append({"record": record.record_name, "class": kind, "label": clf.predict_records([record], long_records=rule).labels[0]})
    return rows


def synthetic(clf, folder: Path, n: int, prematurity: float) -> dict:
    """Labels of `n` 30-s N records of CinC 2017 as they are and with premature beats inserted; their features."""
    reference = read_reference(folder / "REFERENCE.csv")
    originals, changed, feats, moved = [], [], [], []
    for name in sorted(k for k, v in reference.items() if v == "N"):
        record = ecgrhythm.read_record(folder / name)
        if record.n_samples != 30 * record.fs:
            continue
        x = record.signal[:, 0].astype(np.float64)
        y, beats = insert_premature_beats(x, record.fs, detect_beats(x, record.fs), prematurity=prematurity, spacing=(4, 8), seed=len(originals))
        originals.append(record)
        changed.append(EcgRecord(y[:, None].astype(np.float32), record.fs, record.sig_name, f"{name}-ectopy"))
        feats.append(rhythm_features(y, record.fs))
        moved.append(len(beats))
        if len(originals) == n:
            break
    return {
        "records": len(originals),
        "moved_beats_mean": float(np.mean(moved)),
        "original_a": _share_a(clf.predict_records(originals).labels),
        "ectopy_labels": clf.predict_records(changed).labels,
        "features": feats,
    }


def af_records(clf, folder: Path, n: int) -> dict:
    """Labels and features of the first `n` A records of CinC 2017 (training records of the shipped model)."""
    reference = read_reference(folder / "REFERENCE.csv")
    records = [ecgrhythm.read_record(folder / name) for name in sorted(k for k, v in reference.items() if v == "A")[:n]]
    return {"labels": clf.predict_records(records).labels, "features": [rhythm_features(r.signal[:, 0], r.fs) for r in records]}


def feature_booster(data: Path, results: Path, cache: Path) -> dict:
    """AF sensitivity out of fold (the 128-unit pair, and a booster on the rhythm features alone, both prior-corrected)
    on CinC 2017, and that booster fitted on every record (for the ectopy records)."""
    names, folds, _, targets, classes, probs = member_probabilities([results / PAIR / "run"])
    features = feature_table(data, names, cache)
    a = classes.index("A")
    recall = {}
    for label, p in (("pair", probs[0]), ("features", stacked_oof(features, targets, folds, len(classes)))):
        corrected = cross_fitted_prior(p, targets, folds)
        recall[label] = float(np.mean(corrected[targets == a].argmax(axis=1) == a))
    return {
        "recall": recall,
        "model": fit_booster(features, targets),
        "prior": class_frequencies(targets, len(classes)),
        "a": a,
        "records": int((targets == a).sum()),
    }


def calls_a(booster: dict, feats: list[dict]) -> float:
    """The share of records whose features the booster fitted on every CinC 2017 record calls A (prior-corrected)."""
    x = np.array([[f[name] for name in FEATURE_NAMES] for f in feats])
    p = apply_class_prior(booster["model"].predict_proba(x), booster["prior"])
    return float(np.mean(p.argmax(axis=1) == booster["a"]))


def separation(af: list[dict], ectopy: list[dict]) -> dict[str, float]:
    """AUC of each of `FEATURES` for AF against ectopy records (1: every AF record above every ectopy one; 0: below)."""
    from sklearn.metrics import roc_auc_score

    out = {}
    for name in FEATURES:
        a, e = np.array([f[name] for f in af]), np.array([f[name] for f in ectopy])
        a, e = a[np.isfinite(a)], e[np.isfinite(e)]
        out[name] = float(roc_auc_score(np.r_[np.ones(len(a)), np.zeros(len(e))], np.r_[a, e])) if len(a) and len(e) else float("nan")
    return out


def _table(rows: list[tuple]) -> list[str]:
    return ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def markdown(result: dict) -> str:
    """The page `docs/results/ectopy.md` from `main`'s result."""
    groups = result["cinc2021"]
    lines = [
        "# Ectopy is not AF: how often the shipped model calls premature beats and sinus rate changes AF",
        "",
        "Measured by `scripts/ectopy_af.py` (its docstring says what each set is) with the shipped model "
        f"(`models/cinc2017`), on {result['machine']}. Command (from the repository root):",
        "",
        "```",
        result["command"],
        "```",
        "",
        "## CinC 2021 12-lead sample (500 Hz, another device)",
        "",
        "Chosen lead: the lead `classify` takes (lead I unless unusable). Each lead: the 12 leads classified one by one.",
        "",
        "| group | records | called A (chosen lead) | leads called A (of all leads) | records with any lead called A |",
        "|---|---|---|---|---|",
    ]
    for name in ("ectopy", "sinus rate", "other"):
        rows = [r for r in groups["records"] if r["group"] == name]
        if rows:
            chosen = sum(r["label"] == "A" for r in rows)
            leads = sum(r["leads_a"] for r in rows)
            lines.append(
                f"| {name} | {len(rows)} | {chosen} ({chosen / len(rows):.0%}) | {leads} of {12 * len(rows)} ({leads / (12 * len(rows)):.1%}) | "
                f"{sum(r['leads_a'] > 0 for r in rows)} |"
            )
    lines += ["", "Records called A on the chosen lead or on 3 leads or more:", ""]
    lines += _table([("record", "diagnoses", "chosen lead", "label", "leads called A")]) + ["|---|---|---|---|---|"]
    lines += _table(
        [(r["record"], ", ".join(r["dx"]), r["lead"], r["label"], r["leads_a"]) for r in groups["records"] if r["label"] == "A" or r["leads_a"] >= 3]
    )
    cpsc = result["cpsc2021"]
    lines += ["", "## AF sensitivity", "", "| set | records | called A |", "|---|---|---|"]
    for kind in sorted({r["class"] for r in cpsc}):
        rows = [r for r in cpsc if r["class"] == kind]
        lines.append(f"| CPSC 2021 sample, {kind} (200 Hz, whole records) | {len(rows)} | {sum(r['label'] == 'A' for r in rows)} |")
    af = result["cinc2017_af"]
    lines.append(f"| CinC 2017 A records (training records of the shipped model) | {len(af['labels'])} | {_share_a(af['labels']):.1%} |")
    oof = result["af_recall_out_of_fold"]
    lines.append(
        f"| CinC 2017 A records out of fold: the 128-unit pair, prior-corrected (the shipped recipe's estimate) | {oof['records']} | {oof['pair']:.1%} |"
    )
    lines.append(
        f"| CinC 2017 A records out of fold: gradient boosting on the rhythm features alone, prior-corrected | {oof['records']} | {oof['features']:.1%} |"
    )
    lines += [
        "",
        "## CinC 2017 N records with premature beats inserted",
        "",
        "| prematurity | records | premature beats per record (mean) | called A unchanged | called A with premature beats |",
        "|---|---|---|---|---|",
    ]
    for key, s in result["synthetic"].items():
        lines.append(f"| {key} | {s['records']} | {s['moved_beats_mean']:.1f} | {s['original_a']:.1%} | {_share_a(s['ectopy_labels']):.1%} |")
    lines += [
        "",
        "## Do the rhythm features separate ectopy from AF?",
        "",
        "Area under the ROC curve of each feature alone, AF records (CinC 2017 A, above) against the ectopy records "
        "(1 or 0: fully separated, 0.5: not at all).",
        "",
        "| feature | " + " | ".join(result["separation"]) + " |",
        "|---" * (1 + len(result["separation"])) + "|",
    ]
    for name in FEATURES:
        lines.append(f"| {name} | " + " | ".join(f"{v[name]:.3f}" for v in result["separation"].values()) + " |")
    lines += [
        "",
        "Gradient boosting on the rhythm features alone (`ecgrhythm.lab.stacking`'s settings), fitted on every CinC 2017 "
        "record (the unchanged originals of the inserted records among them), prior-corrected: share of the ectopy records "
        "it calls A.",
        "",
        "| records | called A |",
        "|---|---|",
    ]
    lines += [f"| {key} | {v:.1%} |" for key, v in result["features_booster_calls_a"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder (default: %(default)s)")
    parser.add_argument("--n", type=int, default=200, help="CinC 2017 N records to insert premature beats in, and A records (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("docs/results"), help="where ectopy.md and ectopy.json go (default: %(default)s)")
    parser.add_argument(
        "--cache", type=Path, default=Path("runs/features/cinc2017-rhythm.csv"), help="the rhythm features' cache (default: %(default)s)"
    )
    parser.add_argument("--machine", default="this 2-core machine", help="the machine's words on the page")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    clf = ecgrhythm.RhythmClassifier.load()
    result = {"command": COMMAND.format(n=args.n), "machine": args.machine}
    result["cinc2021"] = cinc2021(clf, args.data / "cinc2021-sample")
    result["cpsc2021"] = cpsc2021(clf, args.data / "cpsc2021-sample")
    result["cinc2017_af"] = af_records(clf, args.data / "cinc2017", args.n)
    result["synthetic"] = {f"{p:.0%}": synthetic(clf, args.data / "cinc2017", args.n, p) for p in (0.25, 0.35)}
    booster = feature_booster(args.data / "cinc2017", Path("docs/results/crossval"), args.cache)
    ectopy_2021 = [r["features"] for r in result["cinc2021"]["records"] if r["group"] == "ectopy"]
    result["af_recall_out_of_fold"] = booster["recall"] | {"records": booster["records"]}
    result["features_booster_calls_a"] = {f"inserted ({key})": calls_a(booster, s["features"]) for key, s in result["synthetic"].items()} | {
        "CinC 2021 ectopy": calls_a(booster, ectopy_2021)
    }
    af = result["cinc2017_af"]["features"]
    result["separation"] = {f"vs inserted ({key})": separation(af, s["features"]) for key, s in result["synthetic"].items()} | {
        "vs CinC 2021 ectopy": separation(af, ectopy_2021)
    }
    for part in (*result["synthetic"].values(), result["cinc2017_af"]):  # per-record features: summarised above, not kept
        del part["features"]
    atomic_write_text(args.out / "ectopy.json", json.dumps(result, indent=2, default=float) + "\n")
    page = args.out / "ectopy.md"
    note = page.read_text(encoding="utf-8").partition(NOTES)[2] if page.is_file() else ""
    atomic_write_text(page, markdown(result) + NOTES + note)
    print(markdown(result))


if __name__ == "__main__":
    main()
