"""Tests of the `ecgrhythm.studies` package, one module per module (a package, so its conftest does not shadow the top-level one)."""
