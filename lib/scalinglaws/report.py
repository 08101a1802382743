"""Helpers for the book's analysis notebooks: glue computed values into the text.

`myst_nb.glue` stores an object's text/plain repr, which quotes strings ('cpu'). `glue_text`
formats the value first and glues an object whose repr is exactly that text, so
`{glue:text}`name`` in a markdown cell renders `cpu`, `0.731` or `1.2M` without quotes.
"""
from __future__ import annotations


class _Plain:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def glue_text(name: str, value, fmt: str | None = None) -> str:
    """Glue `format(value, fmt)` (or str(value)) under `name`; return the text."""
    from myst_nb import glue

    text = format(value, fmt) if fmt else str(value)
    glue(name, _Plain(text), display=False)
    return text
