"""What the request models share: ids, blank-free text, page parameters, and the PATCH body base.

A PATCH body changes only the fields it sends and must change something. PatchBody enforces that and
says it in the API document (minProperties, and which fields must be present and not null), so the
document refuses exactly the bodies the server answers 400 to."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self

from pydantic import BeforeValidator, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, model_validator
from pydantic_core import PydanticCustomError, core_schema

from server.validation import Body

MAX_ID = 2**63 - 1  # BIGINT: an id over it names no row
NOTHING_TO_CHANGE = "nothing to change"
INT_RE = re.compile(r"-?[0-9]{1,30}")

# Text that cannot hide or impersonate: no C0/C1 controls (NUL included; a multi-line text keeps its line feeds
# and tabs) and no bidirectional embeddings, overrides or isolates (U+202A-202E, U+2066-2069), which reorder what
# a reader sees; and not blank once the Unicode white space and format characters (zero-width space, no-break
# spaces, ideographic space, BOM, ...) are set aside. The characters are listed, not taken from Unicode
# categories, so that the API document's pattern (ECMA-262 and Python regexes alike) says exactly what the
# server accepts.
Ranges = tuple[tuple[int, int], ...]
_CONTROLS: Ranges = ((0x00, 0x1F), (0x7F, 0x9F), (0x202A, 0x202E), (0x2066, 0x2069))
_MULTILINE_CONTROLS: Ranges = ((0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x9F), (0x202A, 0x202E), (0x2066, 0x2069))
_BLANKS: Ranges = ((0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0xAD, 0xAD), (0x61C, 0x61C),
                   (0x1680, 0x1680), (0x180E, 0x180E), (0x2000, 0x200F), (0x2028, 0x202F), (0x205F, 0x2064),
                   (0x2066, 0x206F), (0x3000, 0x3000), (0xFEFF, 0xFEFF))
BLANKS = "".join(chr(c) for lo, hi in _BLANKS for c in range(lo, hi + 1))


def _char_class(ranges: Ranges) -> str:
    return "".join(f"\\u{lo:04x}" if lo == hi else f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in ranges)


def _pattern(controls: Ranges, *, not_blank: bool) -> str:
    allowed = f"[^{_char_class(controls)}]*"
    return f"^{allowed}[^{_char_class(controls + _BLANKS)}]{allowed}$" if not_blank else f"^{allowed}$"


def _text_validator(controls: Ranges, *, not_blank: bool, trimmed: bool) -> Callable[[str], str]:
    forbidden = re.compile(f"[{_char_class(controls)}]")

    def validate(value: str) -> str:
        if forbidden.search(value):
            raise PydanticCustomError("control_character",
                                      "must not contain control or bidirectional control characters")
        stripped = value.strip(BLANKS)
        if not stripped and not_blank:
            raise PydanticCustomError("blank", "must not be blank")
        return stripped if trimmed else value

    return validate


@dataclass(frozen=True, slots=True)
class Text:
    """The one type of free text in request bodies (names, nicknames, breeds, notes), as
    `Annotated[str, Text(64)]`: a string of at most max_length characters as sent, then trimmed of blanks;
    refused (400 naming the field) with a control or bidirectional control character, or when blank (unless
    not_blank is off: then it may be empty). The API document's pattern says the same. trimmed=False keeps the
    text as sent, blanks included (a search text, in which a space is something to find); min_length, when given,
    is checked on the text as sent."""

    max_length: int
    not_blank: bool = True
    multiline: bool = False
    trimmed: bool = True
    min_length: int | None = None  # None: 1 when not_blank, else 0

    @property
    def controls(self) -> Ranges:
        return _MULTILINE_CONTROLS if self.multiline else _CONTROLS

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        least = self.min_length if self.min_length is not None else 1 if self.not_blank else 0
        checked = core_schema.str_schema(strict=True, min_length=least,
                                         max_length=self.max_length)
        return core_schema.no_info_after_validator_function(
            _text_validator(self.controls, not_blank=self.not_blank, trimmed=self.trimmed), checked)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        described = handler(schema)
        described["pattern"] = _pattern(self.controls, not_blank=self.not_blank)
        return described


def _query_int(value: Any) -> Any:
    """A query-string integer in plain decimal digits ("5_0", " 5" and "+5" are refused)."""
    if isinstance(value, str) and not INT_RE.fullmatch(value):
        raise PydanticCustomError("int_format", "must be an integer")
    return value


QueryInt = BeforeValidator(_query_int)  # after the bounds in Annotated[int, Field(...), QueryInt]
Limit = Annotated[int, Field(ge=1, le=100, description="page size"), QueryInt]
Offset = Annotated[int, Field(ge=0, le=10_000_000, description="rows to skip"), QueryInt]
IncludeTotal = Annotated[bool, Field(description=(
    "false: page.total is null and not counted (for an admin listing every pet or user, counting reads every "
    "match, so it costs in proportion to the deployment; the page itself does not)"))]
PageCursor = Annotated[str | None, Field(min_length=1, max_length=512, description=(
    "page.next_cursor of the previous page: the page after it, as cheap deep in the list as at its start "
    "(instead of offset, with the same sort and filters)"))]


NEVER: dict[str, Any] = {"not": {}}  # a schema no value matches: as a property's, "this property is absent"


def patch_schema(schema: dict[str, Any], model: type[PatchBody]) -> None:
    """The document's side of PatchBody: at least one field, and one that changes something."""
    schema["minProperties"] = 1
    if model.null_means_unchanged or model.qualifiers:
        # "Not (every field that could change something is absent, or null where null means unchanged)": a
        # `not` beside the properties rather than an anyOf of alternatives, which generated clients turn into
        # one class per alternative, each with one field (openapi-python-client dropped current_password).
        schema["not"] = {"properties": {name: {"type": "null"} if name in model.null_means_unchanged else NEVER
                                        for name in model.model_fields if name not in model.qualifiers}}


class PatchBody(Body):
    """Base of PATCH bodies: only the fields sent change; a body that changes nothing is 400."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=patch_schema)
    # Fields whose null means "leave as is" (not "clear it"): sent as null, they change nothing.
    null_means_unchanged: ClassVar[frozenset[str]] = frozenset()
    # Fields that only qualify another change (the current password of a password change).
    qualifiers: ClassVar[frozenset[str]] = frozenset()

    def changes(self) -> dict[str, Any]:
        """The fields this PATCH changes, by name."""
        return {name: value for name, value in self.model_dump(exclude_unset=True).items()
                if name not in self.qualifiers and not (value is None and name in self.null_means_unchanged)}

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.changes():
            raise PydanticCustomError("nothing_to_change", NOTHING_TO_CHANGE)
        return self
