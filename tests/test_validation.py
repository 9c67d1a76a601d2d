"""Request bodies: what a JSON body's field accepts is what its JSON type says."""

from __future__ import annotations

import pytest

from server.errors import InvalidParameter
from server.validation import Body, validate


def body_models() -> list[type[Body]]:
    """Every request body model of the loaded plugins."""
    found: list[type[Body]] = []
    todo = list(Body.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo += model.__subclasses__()
    return found


def boolean_fields(model: type[Body]) -> list[str]:
    """The fields the API document types as boolean (alone or beside null)."""
    properties = model.model_json_schema()["properties"]
    return [name for name, schema in properties.items()
            if "boolean" in [s.get("type") for s in (schema, *schema.get("anyOf", ()))]]


def test_every_boolean_of_a_body_takes_json_booleans_only(app):
    """A boolean sent as "no", 0 or "off" is 400 naming the field, not read as false ("yes" and 1 not as true)."""
    checked = []
    for model in body_models():
        for name in boolean_fields(model):
            for not_a_bool in ("no", "off", "yes", "true", 0, 1):
                with pytest.raises(InvalidParameter) as refused:
                    validate(model, {name: not_a_bool})
                assert name in [e["field"] for e in refused.value.errors], (model, name, not_a_bool)
            checked.append(f"{model.__name__}.{name}")
    assert "AdminUserUpdate.disabled" in checked  # the app's plugins are loaded: the walk saw their bodies
