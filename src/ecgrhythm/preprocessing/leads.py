"""Which leads of a record a model takes: the lead of a single-lead model, the named leads of a multi-lead one.

:func:`input_columns` is the one place that decides the columns a model reads from a record (held whole or
read in pieces) and checks their number against the model's. A single-lead model takes the lead named by
the caller; else the lead it prefers by name (its own lead, else lead I, else the first), unless the record's
samples show that lead unusable (flat, disconnected, noise) and another clearly better
(:func:`~ecgrhythm.preprocessing.quality.best_lead`, on the first `CHECK_S` seconds).
"""

from __future__ import annotations

import dataclasses

from ecgrhythm.preprocessing.quality import best_lead
from ecgrhythm.records import EcgRecord, RecordError

__all__ = ["input_columns", "choose_lead", "chosen_lead", "lead_index", "model_columns", "check_lead_argument", "PREFERRED_LEAD"]

PREFERRED_LEAD = "I"  # the lead a single-lead model takes from a multi-lead record unless told otherwise


def input_columns(
    sig_name, lead=None, n_leads: int = 1, *, model_leads=None, source="record", signal=None, fs: float | None = None
) -> tuple[list[int], str | None]:
    """The columns a model with `n_leads` leads takes from a record with leads `sig_name`, and the lead's name.

    A single-lead model takes one column (:func:`chosen_lead`); a multi-lead model takes its named leads
    (`model_leads`, see :func:`model_columns`) or else every column, which must then number `n_leads`.

    Args:
        sig_name: the record's lead names.
        lead: lead name or 0-based index for a single-lead model (`None`: see :func:`chosen_lead`).
        n_leads: leads the model takes.
        model_leads: lead names of the model's config (`PreprocessConfig.leads`), if any.
        source: record or file name for the error messages.
        signal: the record's samples `(n_samples, len(sig_name))` in mV, or at least their first
            :data:`~ecgrhythm.preprocessing.quality.CHECK_S` seconds (a record read in pieces), so that a
            single-lead model given no `lead` passes over an unusable lead; `None`: chosen by name only.
        fs: the record's sampling rate in Hz, with `signal`.

    Returns:
        `(columns, lead_name)`: column indices in the model's order, and the name of a single-lead
        model's lead (`None` for a multi-lead model).

    Raises:
        RecordError: `lead` is not in the record, or the record lacks the leads the model needs.
        ValueError: `lead` was given for a multi-lead model.
    """
    index = chosen_lead(sig_name, lead, n_leads, model_leads=model_leads, source=source, signal=signal, fs=fs)
    if index is not None:
        return [index], sig_name[index]
    columns = model_columns(sig_name, model_leads, source)
    columns = list(range(len(sig_name))) if columns is None else columns
    if len(columns) != n_leads:
        raise RecordError(
            source,
            f"the record has {len(columns)} leads ({', '.join(sig_name)}) but the model takes {n_leads}; "
            f"classify records with {n_leads} lead(s), or use a model trained on these leads",
        )
    return columns, None


def model_columns(sig_name, leads, source="record") -> list[int] | None:
    """Columns for a model's `leads` (`PreprocessConfig.leads`) among `sig_name`, matched by name ignoring case and spaces.

    Returns:
        The column indices, or `None` for all columns: `leads` is `None`, or a
        single-lead model meets a single-lead record (it takes its lead whatever its name).

    Raises:
        RecordError: the record lacks leads the model needs (named in the message).
    """
    if leads is None:
        return None
    have = [name.strip().lower() for name in sig_name]
    want = [lead.strip().lower() for lead in leads]
    missing = [lead for lead, key in zip(leads, want) if key not in have]
    if missing:
        if len(leads) == 1 and len(sig_name) == 1:
            return None
        raise RecordError(source, f"missing leads {missing}; the model needs {list(leads)}, the record has {list(sig_name)}")
    return [have.index(key) for key in want]


def lead_index(sig_name, lead, source="record", default=None) -> int:
    """Column of the lead to use among `sig_name`.

    Args:
        sig_name: the record's lead names.
        lead: a lead name (matched ignoring case and spaces), a 0-based index
            (int or digits), or `None` for `default` if the record has it,
            else lead I if it has one, else the first lead.
        source: record or file name for the error message.
        default: the lead the model was trained on, if its config names one.

    Raises:
        RecordError: `lead` names a lead the record lacks or an index out of range.
    """
    have = [name.strip().lower() for name in sig_name]
    if lead is None:
        for wanted in (default, PREFERRED_LEAD):
            if wanted is not None and wanted.strip().lower() in have:
                return have.index(wanted.strip().lower())
        return 0
    text = str(lead).strip()
    if text.lower() in have:
        return have.index(text.lower())
    if text.isascii() and text.isdigit() and len(text) <= 3 and int(text) < len(have):  # an index (ASCII digits only)
        return int(text)
    raise RecordError(
        source,
        f"no lead {lead!r}: the record has {list(sig_name)}; the `lead` argument takes one of these names or an index from 0 to {len(have) - 1}",
    )


def choose_lead(record: EcgRecord, lead=None, n_leads: int = 1, *, model_leads=None) -> tuple[EcgRecord, str | None]:
    """The record a model with `n_leads` leads takes, and the lead chosen for a single-lead model.

    A single-lead model given a multi-lead record takes `lead`, or without it the lead
    :func:`chosen_lead` chooses from the record's samples: the model's own lead, else lead I, else the
    first lead, unless that lead is unusable and another clearly better. Multi-lead models take the
    record unchanged.

    Args:
        record: the raw record.
        lead: lead name or 0-based index, or `None` to choose as above.
        n_leads: leads the model takes.
        model_leads: lead names of the model's config (`PreprocessConfig.leads`), if any.

    Returns:
        `(record, lead_name)`: a single-lead record (or `record` itself) and
        the name of its lead; `lead_name` is `None` for a multi-lead model.

    Raises:
        RecordError: `lead` is not in the record.
        ValueError: `lead` was given for a multi-lead model.
    """
    index = chosen_lead(record.sig_name, lead, n_leads, model_leads=model_leads, source=record.record_name, signal=record.signal, fs=record.fs)
    if index is None:
        return record, None
    if record.n_leads == 1:
        return record, record.sig_name[0]
    chosen = dataclasses.replace(record, signal=record.signal[:, index : index + 1], sig_name=(record.sig_name[index],))
    return chosen, record.sig_name[index]


def chosen_lead(sig_name, lead=None, n_leads: int = 1, *, model_leads=None, source="record", signal=None, fs: float | None = None) -> int | None:
    """The column a model with `n_leads` leads takes from a record with leads `sig_name` (see :func:`choose_lead`).

    A `lead` given is always taken. Without one, the lead preferred by name (:func:`lead_index`) is taken,
    unless `signal` is given and shows it unusable and another lead clearly better
    (:func:`~ecgrhythm.preprocessing.quality.best_lead`).

    Args:
        sig_name, lead, n_leads, model_leads, source: as for :func:`input_columns`.
        signal: the record's samples `(n_samples, len(sig_name))`, or their first
            :data:`~ecgrhythm.preprocessing.quality.CHECK_S` seconds; `None`: the lead is chosen by name only.
        fs: their sampling rate in Hz (required with `signal`).

    Returns:
        The column of the lead for a single-lead model, `None` for a multi-lead model.

    Raises:
        RecordError: `lead` is not among `sig_name`.
        ValueError: `lead` was given for a multi-lead model.
    """
    check_lead_argument(lead, n_leads)
    if n_leads != 1:
        return None
    default = model_leads[0] if model_leads is not None and len(model_leads) == 1 else None
    index = lead_index(sig_name, lead, source, default)
    if lead is not None or signal is None or len(sig_name) < 2:
        return index
    if fs is None:
        raise ValueError(f"Invalid argument `fs`: the sampling rate of `signal` is needed to judge its leads. Received: fs={fs!r}")
    if getattr(signal, "ndim", None) != 2 or signal.shape[1] != len(sig_name):
        raise ValueError(
            f"Invalid argument `signal`: expected an array (n_samples, {len(sig_name)}), one column per lead of {list(sig_name)}. "
            f"Received: shape {getattr(signal, 'shape', None)}"
        )
    return best_lead(signal, fs, index, sig_name=sig_name, source=source)


def check_lead_argument(lead, n_leads: int) -> None:
    """Refuse a `lead` for a model with `n_leads` leads other than one: a multi-lead model takes its leads, no lead is chosen.

    Raises:
        ValueError: `lead` is given and `n_leads` is not 1.
    """
    if lead is not None and n_leads != 1:
        raise ValueError(f"Invalid argument `lead`: the model takes {n_leads} leads, so no lead is chosen. Received: lead={lead!r}")
