"""If-Match for the operations that do not evaluate it themselves (RFC 9110 13.1.1): an origin server must not
perform a method whose If-Match is false, and a list of tags is false for a resource that has no tag."""

from __future__ import annotations

import re

# One entity tag of a list (RFC 9110 8.8.3): at the start or after a comma, alone up to the next comma or the end.
ENTITY_TAG_RE = re.compile(r'(?:^|,)[ \t]*(W/)?"([^"]*)"[ \t]*(?=,|$)')


def if_match_holds(header: str, etag: str | None) -> bool:
    """Whether an If-Match holds for a resource that exists and has tag etag (quoted; None: it has none): '*' does,
    else one of its tags must be etag compared strongly (a weak W/"..." names none), so an empty, garbled or
    unmatched list never holds."""
    if header.strip() == "*":
        return True
    if etag is None or etag.startswith("W/"):
        return False
    return any(not weak and f'"{opaque}"' == etag for weak, opaque in ENTITY_TAG_RE.findall(header))
