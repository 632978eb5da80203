#!/usr/bin/env bash
# The main job, what to run first: set up, then on data the shipped model never saw (the CPSC 2021 sample,
# 2-lead 200 Hz records of another device) find the AF episodes and AF burden of each record, score them
# against the annotated episodes, and classify a few CinC 2017 records with their probabilities.
# Results go to runs/main/ (or $ECGRHYTHM_OUT); the data folder is $ECGRHYTHM_DATA or a shared/data beside
# the checkout, as for the ecgrhythm command. --training-score also scores the model on the CinC 2017
# records, which it was trained on (so that score is not a held-out one).
set -euo pipefail
cd "$(dirname "$0")/.."

training_score=0
for arg in "$@"; do
    case "$arg" in
        --training-score) training_score=1 ;;
        -h | --help) sed -n '2,7s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "main.sh: unknown argument '$arg': the only option is --training-score" >&2; exit 2 ;;
    esac
done

source scripts/setup.sh
ecgrhythm=.venv/bin/ecgrhythm
python=.venv/bin/python
data=$("$python" -c 'from ecgrhythm.config import default_data_dir; print(default_data_dir() or "")')
for subset in cpsc2021-sample cinc2017; do
    if [ -z "$data" ] || [ ! -d "$data/$subset" ]; then
        echo "main.sh: no data folder with $subset/ (looked in ${data:-\$ECGRHYTHM_DATA and shared/data beside the checkout}):" \
            "set ECGRHYTHM_DATA to the folder holding cpsc2021-sample/ and cinc2017/" >&2
        exit 1
    fi
done
cpsc=$data/cpsc2021-sample
out=${ECGRHYTHM_OUT:-runs/main}
mkdir -p "$out"

step() { printf '\n== %s ==\n' "$1"; }
run() { printf '$ ecgrhythm %s\n' "${*//$data/\$DATA}"; "$ecgrhythm" "$@"; }
started=$SECONDS
printf 'data: DATA=%s\nresults: %s\n' "$data" "$out"

step "1. AF episodes and AF burden of the CPSC 2021 sample (2-lead 200 Hz records the model never saw)"
run episodes "$cpsc" --output "$out/cpsc2021-episodes.csv" --summary "$out/cpsc2021-summary.csv" --plot "$out/pictures"
"$python" - "$out/cpsc2021-summary.csv" <<'EOF'
import csv, sys

print(f"\n{'record':<12}{'minutes':>8}{'AF burden':>11}{'AF episodes':>13}  class")
for row in csv.DictReader(open(sys.argv[1], encoding="utf-8")):
    print(f"{row['record']:<12}{float(row['duration_s']) / 60:>8.1f}{100 * float(row['af_burden']):>10.1f}%{row['af_episodes']:>13}  {row['record_class']}")
EOF

step "2. The episodes scored against the annotated AF episodes (held out: CPSC 2021 score, burden error)"
run evaluate --task episodes --data "$cpsc" --output "$out/cpsc2021-evaluation"

step "3. Classify a few CinC 2017 records, one of each class (records the model trained on: this shows the output, not accuracy)"
records=(A00001 A00004 A00013 A00022 A00005)  # REFERENCE.csv: N, A, O, ~ (noisy), A
run classify "${records[@]/#/$data/cinc2017/}" --output "$out/cinc2017-classify.csv"
"$python" - "$out/cinc2017-classify.csv" "$data/cinc2017/REFERENCE.csv" <<'EOF'
import csv, sys

reference = dict(csv.reader(open(sys.argv[2], encoding="utf-8")))
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
classes = [c for c in rows[0] if c not in ("record", "label", "lead", "af_burden", "record_class")]
print(f"\n{'record':<8}{'label':>6}{'reference':>10}" + "".join(f"{'P(' + c + ')':>8}" for c in classes))
for row in rows:
    print(f"{row['record']:<8}{row['label']:>6}{reference.get(row['record'], '?'):>10}" + "".join(f"{float(row[c]):>8.3f}" for c in classes))
EOF

if [ "$training_score" = 1 ]; then
    step "4. Training-set score: CinC 2017, the records the model was trained on (NOT a held-out score)"
    run evaluate --all-records --data "$data/cinc2017" --output "$out/cinc2017-training-score"
fi

step "Written in $out/ ($((SECONDS - started)) s)"
printf '%s\n' \
    "cpsc2021-episodes.csv         every rhythm episode of each record (start_s, end_s, label, probability)" \
    "cpsc2021-summary.csv          per record: duration, AF burden, AF episodes, longest, record class" \
    "pictures/                     one PNG per cpsc2021 record: its rhythm strip, AF episodes and ECG at the longest one's onset" \
    "cpsc2021-evaluation/          the episode score against the annotations (JSON and a figure)" \
    "cinc2017-classify.csv         label and class probabilities of the classified records"
if [ "$training_score" = 1 ]; then
    echo "cinc2017-training-score/      the training-set score (JSON, figure, predictions.csv)"
fi
