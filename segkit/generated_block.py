"""Generated parts of hand-written docs: the text between two marker lines, replaced by what the code renders."""

from __future__ import annotations

from segkit.errors import SegkitError


def replace_block(text: str, begin: str, end: str, body: str, where: str) -> str:
    """``text`` with everything between ``begin`` and ``end`` replaced by ``body``; one line naming ``where``
    and the markers when either is missing, so a doc edited by hand is never silently overwritten."""
    if begin not in text or end not in text:
        raise SegkitError(f"{where}: the generated-block markers are missing; put {begin!r} and {end!r} around "
                          "the generated part")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"
