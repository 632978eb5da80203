"""The length study: every registered length strategy (see `strategies`) on the same network."""

from __future__ import annotations

from ecgrhythm.lab.studies.base import BASE_MODEL, STUDY_FS, Budget, Study, Variant, register_study
from ecgrhythm.lab.studies.strategies import LENGTHS, advised_length

__all__ = ["LengthStudy"]


@register_study
class LengthStudy(Study):
    name = "length"
    question = "How should an LSTM take inputs of different lengths?"
    factor = "variable-length strategy"
    reference = "bucket_mask"

    def variants(self):
        return [Variant(name, {"length": name}, length=name) for name in LENGTHS]

    def distributions(self):
        from optuna.distributions import CategoricalDistribution

        return {"length": CategoricalDistribution(list(LENGTHS))}

    def answer(self, complete, close, margin, reference):
        fast = max(close, key=lambda s: s["inference_records_per_s"])
        return [f"Fastest at inference among those: **{fast['variant']}** ({fast['inference_records_per_s']:.0f} records/s)."]

    def compared(self, setup):
        from ecgrhythm.preprocessing.batching import bucket_lengths

        fs = float(setup.get("fs", STUDY_FS))
        lost = setup.get("crop_pad_discards", {})
        down = BASE_MODEL.downsampling
        kept, fixed = advised_length(fs, down)
        longest = bucket_lengths(fs, down)[-1] / fs
        window = setup.get("budget", {}).get("window_s", Budget.window_s)
        lines = [f"- `{k}`: {v.description}" for k, v in LENGTHS.items()]
        lines += [
            "",
            f"`crop_pad` and `resample` train and predict on one fixed input ({fixed:,} samples at {fs:g} Hz: the advised {kept:,} "
            f"rounded up to a multiple of the network's {down}x downsampling; the padding is zeros the network sees). "
            f"`bucket_mask` and `windows` train on the same random {window:g} s windows; they differ in records shorter than the window "
            "(padding masked in `bucket_mask`, zeros seen in `windows`) and, mostly, at inference: `bucket_mask` predicts on the whole "
            f"record at once, padded to its length bucket and masked (records over {longest:.0f} s in chunks), `windows` averages its windows.",
            "",
            f"Cropping to 30 s throws away **{100 * lost.get('share_of_signal', float('nan')):.1f}%** of all signal in the data set "
            f"and cuts **{100 * lost.get('share_of_records_cut', float('nan')):.1f}%** of the records.",
        ]
        return lines
