from myst_nb.core.variables import format_plain_text

from scalinglaws.report import _Plain


def test_glued_text_renders_verbatim():
    # what myst-nb does with a glued object's text/plain when rendering {glue:text}
    for text in ["cpu", "3,591", "0.731", "1.2M", "(a, b)", "it's 5%"]:
        assert format_plain_text(repr(_Plain(text)), "") == text
