"""Packages of ecgrhythm (the rest of the build is in pyproject.toml).

The shipped model folders live in `models/` at the repository root, where they are documented; the wheel carries them as
the package data of `ecgrhythm.pretrained`, mapped onto `models/` (see `ecgrhythm.inference.classifier.default_model_dir`). Each
model folder is listed as a package of its own (`ecgrhythm.pretrained.cinc2017`): Python could import it as a namespace
package, and setuptools warns about such a folder when it is left out of `packages`. A folder whose name is no Python
identifier (a hidden one, or one with a dash) cannot be a package, so it is not listed.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

MODELS = Path(__file__).parent / "models"

setup(
    packages=[
        *find_namespace_packages("src", include=["ecgrhythm*"]),
        "ecgrhythm.pretrained",
        *(f"ecgrhythm.pretrained.{d.name}" for d in sorted(MODELS.iterdir()) if d.is_dir() and d.name.isidentifier()),
    ],
    package_dir={"": "src", "ecgrhythm.pretrained": "models"},
)
