"""docs/feedback.md sends readers to public names and existing docs only."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "feedback.md"


def test_feedback_doc_names_no_private_module_and_no_missing_doc():
    text = DOC.read_text(encoding="utf-8")
    private = re.findall(r"closedloop(?:\.\w+)*\._\w+|`_\w+`", text)
    assert private == []
    for link in re.findall(r"\]\(([^)#]+\.md)", text):
        assert (DOC.parent / link).is_file(), link
    assert "DESIGN.md" not in text
