"""Sphinx extension: drop duplicate <script> entries from every page.

sphinx-thebe and sphinx-togglebutton (pulled in by Jupyter Book 1) add their inline configuration
scripts on every `env-before-read-docs`, and Jupyter Book reads the documents more than once, so
each page got `const THEBE_JS_URL = ...` twice: a JavaScript SyntaxError ("Identifier has already
been declared") in every reader's console, caught by tests/test_book_browser.py. An inline script
has no file: its filename is None or "" depending on who added it, so both count as the same.
"""


def _key(js) -> tuple:
    return (str(getattr(js, "filename", js) or ""), tuple(sorted(getattr(js, "attributes", {}).items())))


def _dedup(app, pagename, templatename, context, doctree):
    if "script_files" not in context:
        return
    seen, kept = set(), []
    for js in context["script_files"]:
        if _key(js) not in seen:
            seen.add(_key(js))
            kept.append(js)
    context["script_files"][:] = kept


def setup(app):
    app.connect("html-page-context", _dedup, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
