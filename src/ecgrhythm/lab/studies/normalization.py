"""The normalisation study: per-record z-score, min-max, robust, none or one global scale, with or without a band-pass."""

from __future__ import annotations

from ecgrhythm.config import NORMALIZATIONS
from ecgrhythm.lab.studies.base import STUDY_FS, Study, Variant, register_study

__all__ = ["NormalizationStudy", "BANDPASS", "METHODS"]

BANDPASS = (0.5, 40.0)
# per-record methods, then one scale for the whole data set; the order is the store's (Optuna refuses another)
METHODS = ("none", *(m for m in NORMALIZATIONS if m != "none"), "global")


def _band_text(band) -> str:
    return f"{band[0]:g}-{band[1]:g} Hz" if band else "none"


@register_study
class NormalizationStudy(Study):
    name = "normalization"
    question = "Is normalising the raw signal a good input, and which normalisation?"
    factor = "normalisation and band-pass filter"
    reference = "zscore/raw"

    def variants(self):
        return [
            Variant(
                f"{method}/{'bandpass' if band else 'raw'}",
                {"normalization": method, "bandpass": _band_text(band)},
                normalization=method,
                bandpass=band,
            )
            for band in (None, BANDPASS)
            for method in METHODS
        ]

    def distributions(self):
        from optuna.distributions import CategoricalDistribution

        return {"normalization": CategoricalDistribution(list(METHODS)), "bandpass": CategoricalDistribution(["none", _band_text(BANDPASS)])}

    def compared(self, setup):
        fs = float(setup.get("fs", STUDY_FS))
        return [
            f"Each record (at {fs:g} Hz) is, optionally after a zero-phase 3rd-order Butterworth band-pass of "
            f"{BANDPASS[0]:g}-{BANDPASS[1]:g} Hz (`bandpass`; `raw` = no filter):",
            "- `none`: the signal in millivolts as recorded;",
            "- `zscore`: minus its mean, divided by its standard deviation;",
            "- `minmax`: mapped to [-1, 1] by its minimum and maximum;",
            "- `robust`: minus its median, divided by its interquartile range;",
            "- `global`: one offset and scale for the whole data set (mean and standard deviation of all training samples).",
        ]
