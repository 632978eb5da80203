"""Griffe extension: the docstrings' `Example:` sections read as doctest examples in the API reference.

The package writes `Example:` (Keras' habit); griffe's Google parser takes only `Examples:` as doctest code and
renders `Example:` as a Markdown admonition, where `>>>` lines become nested quotes. This renames the section
header while mkdocstrings collects the docstrings, so the source keeps its wording.
"""

import re

import griffe

EXAMPLE_HEADER = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rewrites `Example:` section headers as `Examples:` in every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = EXAMPLE_HEADER.sub(r"\1Examples:", obj.docstring.value)
