"""orgsim._io.replace_section: how the report scripts write their generated sections into docs."""

from __future__ import annotations

import pytest

from orgsim._io import replace_section

B, E = "<!-- x:begin -->", "<!-- x:end -->"


def test_a_section_replaces_the_marked_text_and_keeps_the_rest(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\nintro\n\n{B}\nold table\n{E}\n\nafter, with {E} again\n")
    replace_section(doc, B, E, f"{B}\nnew table\n{E}\n")
    assert doc.read_text() == f"# Title\n\nintro\n\n{B}\nnew table\n{E}\n\nafter, with {E} again\n"
    assert [p.name for p in tmp_path.iterdir()] == ["doc.md"]  # no temporary file left behind


def test_a_section_is_appended_to_a_document_without_the_markers_or_creates_it(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\ntext\n\n\n")
    replace_section(doc, B, E, f"{B}\nT\n{E}")
    assert doc.read_text() == f"# Title\n\ntext\n\n{B}\nT\n{E}\n"
    new = tmp_path / "sub" / "new.md"
    replace_section(new, B, E, f"{B}\nT\n{E}")
    assert new.read_text() == f"{B}\nT\n{E}\n"
    # an end marker before the begin marker is not a section: append, never cut text
    odd = tmp_path / "odd.md"
    odd.write_text(f"{E}\nkeep\n{B}\n")
    replace_section(odd, B, E, f"{B}\nT\n{E}")
    assert odd.read_text() == f"{E}\nkeep\n{B}\n\n{B}\nT\n{E}\n"


def test_a_section_without_its_markers_is_refused_and_nothing_is_written(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(f"{B}\nold\n{E}\n")
    with pytest.raises(ValueError, match="the section must start with"):
        replace_section(doc, B, E, "a table without markers")
    assert doc.read_text() == f"{B}\nold\n{E}\n"
