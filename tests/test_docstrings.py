"""The shared-docstring filler: text replaces the marker line, indented like it."""

import pytest

from switchssm._docstrings import fill_doc


def test_fill_doc_indents_and_refuses_a_missing_marker():
    def f():
        """Sum.

        Args:
            {xy}
        """

    fill_doc("x: one.\n\ny: two.", "{xy}")(f)
    assert f.__doc__.splitlines()[3:6] == ["            x: one.", "", "            y: two."]
    with pytest.raises(ValueError, match="has no line '{zz}'"):
        fill_doc("z", "{zz}")(f)
