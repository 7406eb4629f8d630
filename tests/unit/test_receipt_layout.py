"""The 42-column receipt helpers: the short-line shortcut in ``_wrap`` gives exactly what
textwrap gives, for any text (it runs on every sale, so it skips textwrap when it can)."""

import textwrap

from hypothesis import given, strategies as st

from dbmis_core.services.receipts import WIDTH, _field, _wrap


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60), st.integers(1, 60))
def test_wrap_matches_textwrap(text, width):
    want = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
    assert _wrap(text, width) == want


def test_a_long_value_continues_under_itself():
    out = _field("Address", "Flat 12, Block C, 1234 Very Long Industrial Estate Road").splitlines()
    assert len(out) == 2 and all(len(line) <= WIDTH for line in out)
    assert out[1].startswith(" " * 13) and out[0].startswith("Address    : Flat 12")
