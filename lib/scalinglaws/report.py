"""Helpers for the book's analysis notebooks: glue computed values into the text.

myst-nb renders `{glue:text}`name`` by `ast.literal_eval` of the glued object's text/plain repr,
so a glued string like "3,591" would come out as the tuple "(3, 591)". `glue_text` formats the
value first and glues an object whose repr is the *quoted* text, which literal_eval turns back
into exactly that text: `cpu`, `0.731`, `3,591` or `1.2M` render as written.
"""
from __future__ import annotations


class _Plain:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)


def glue_text(name: str, value, fmt: str | None = None) -> None:
    """Glue `format(value, fmt)` (or str(value)) under `name` for `{glue:text}` roles."""
    from myst_nb import glue

    glue(name, _Plain(format(value, fmt) if fmt else str(value)), display=False)
