"""What the request models share: ids, blank-free text, page parameters, and the PATCH body base.

A PATCH body changes only the fields it sends and must change something. PatchBody enforces that and
says it in the API document (minProperties, and which fields must be present and not null), so the
document refuses exactly the bodies the server answers 400 to."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Self

from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from server.validation import Body

MAX_ID = 2**63 - 1  # BIGINT: an id over it names no row
# ASCII whitespace only, so the schema's pattern and the server agree in every regex engine.
BLANKS = " \t\n\r\f\v"
NOT_BLANK = r"[^ \t\n\r\f\v]"
NOTHING_TO_CHANGE = "nothing to change"
INT_RE = re.compile(r"-?[0-9]{1,30}")


def trimmed_not_blank(value: str) -> str:
    """The text without surrounding blanks; refused when nothing else is left."""
    value = value.strip(BLANKS)
    if not value:
        raise PydanticCustomError("blank", "must not be blank")
    return value


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


def patch_schema(schema: dict[str, Any], model: type[PatchBody]) -> None:
    """The document's side of PatchBody: at least one field, and one that changes something."""
    schema["minProperties"] = 1
    if model.null_means_unchanged or model.qualifiers:
        schema["anyOf"] = [{"required": [name], **({"properties": {name: {"not": {"type": "null"}}}}
                                                   if name in model.null_means_unchanged else {})}
                           for name in model.model_fields if name not in model.qualifiers]


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
