"""Packages of ecgrhythm (the rest of the build is in pyproject.toml).

The shipped model folders live in `models/` at the repository root, where they are documented; the wheel carries them as
the package data of `ecgrhythm.pretrained`, mapped onto `models/` (see `ecgrhythm.inference.default_model_dir`).
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages("src", include=["ecgrhythm*"]), "ecgrhythm.pretrained"],
    package_dir={"": "src", "ecgrhythm.pretrained": "models"},
)
