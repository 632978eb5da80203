"""The examples in the docstrings of the package face (`ecgrhythm.__all__`) run as written, on the real records.

Each example reads records by their path relative to the repository root (`../shared/data/cinc2017/A00001.hea`:
the data folder sits beside a checkout), so the examples run from the repository root and are skipped when that
folder is missing. The examples load the shipped model with `RhythmClassifier.load()`, as a reader would; here
every such call returns one classifier loaded once, so the examples take seconds instead of a load each.
"""

from __future__ import annotations

import doctest
import inspect
from pathlib import Path

import pytest

import ecgrhythm
from ecgrhythm.inference.classifier import RhythmClassifier

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"  # where the examples' relative paths lead
FACE = [name for name in ecgrhythm.__all__ if name != "__version__"]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Public names whose docstrings, written in files of other stages, owe an example still (issue #33).
EXAMPLES_OWED: set[str] = set()


def _examples(obj, name: str) -> list[doctest.DocTest]:
    """The doctests of `obj` and, for a class, of the methods and properties it defines or takes from its package's mixins."""
    owners = [c for c in obj.__mro__ if c.__module__.startswith("ecgrhythm")] if inspect.isclass(obj) else [obj]
    tests = {}
    for owner in owners:
        found = doctest.DocTestFinder(exclude_empty=True).find(owner, name, module=inspect.getmodule(owner), globs={})
        for test in found:  # named `name.method` whichever class defines the method; the class's own first
            tests.setdefault(test.name, test)
    return [t for t in tests.values() if t.examples]


def _face_examples() -> list[doctest.DocTest]:
    tests = doctest.DocTestFinder(recurse=False).find(ecgrhythm, "ecgrhythm", globs={})  # the package docstring
    for name in FACE:
        tests += _examples(getattr(ecgrhythm, name), f"ecgrhythm.{name}")
    return [t for t in tests if t.examples]


@pytest.fixture(scope="module")
def one_shipped_model():
    """`RhythmClassifier.load()` of the shipped model returns one classifier, loaded once, for every example."""
    original = RhythmClassifier.__dict__["load"]
    shipped = RhythmClassifier.load()

    def load(cls, model_dir=None, **kwargs):
        return shipped if model_dir is None and not kwargs else original.__func__(cls, model_dir, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RhythmClassifier, "load", classmethod(load))
        yield shipped


@pytest.fixture(scope="module")
def in_repository_root():
    if not (DATA / "cinc2017").is_dir() or not (DATA / "cpsc2021-sample").is_dir():
        pytest.skip(f"the examples read records from ../shared/data beside the checkout, which is missing ({DATA})")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        yield ROOT


@pytest.mark.parametrize("test", _face_examples(), ids=lambda t: t.name)
def test_the_docstring_examples_of_the_package_face_run_as_written(test, in_repository_root, one_shipped_model):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {test.name} failed (their output is above)"


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="no example yet")) if n in EXAMPLES_OWED else n for n in FACE]
)
def test_every_public_name_of_the_face_has_an_example(name):
    obj = getattr(ecgrhythm, name)
    assert _examples(obj, name), f"ecgrhythm.{name} has no docstring example"
