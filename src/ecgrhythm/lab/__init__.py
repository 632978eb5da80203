"""The research lab: controlled studies (`studies`), cross-validation reports (`crossval_report`) and the table comparing them (`candidates`), ensembles of cross-validations (`crossval_ensemble`) and the `study`, `crossval` and `ensemble` commands (`cli`).

The lab uses the product's public API; the product never imports the lab. Its commands reach the `ecgrhythm` command through the entry-point group `ecgrhythm.commands`, loaded only when one of them runs. `study` needs the `study` extra (Optuna).
"""
