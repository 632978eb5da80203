"""Scoring a model on a labelled folder: rhythm classes (`rhythm`), AF episodes against annotations (`episodes`), and the written reports (`reports`)."""
