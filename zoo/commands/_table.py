"""Plain-text tables for command output."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1])] + [row[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def command_doc(doc: str | None) -> tuple[str | None, str | None]:
    """A command module's docstring as (help line, description): ``"``zoo x``: HELP.\\n\\nDESCRIPTION"``.

    Under ``python -OO`` (no docstrings) both are ``None`` and argparse shows none.
    """
    if not doc:
        return None, None
    head, _, body = doc.partition("\n\n")
    return head.split(": ", 1)[-1].rstrip("."), " ".join(body.split()) or None
