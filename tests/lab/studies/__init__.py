"""Tests of the `ecgrhythm.lab.studies` package, one module per module (a package, so its conftest does not shadow the top-level one)."""
