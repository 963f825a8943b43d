"""The CRD in crds/ and the Python spec model must describe the same resource.

The walk compares, field by field: names (camelCase aliases), required fields, scalar types,
defaults, enums, numeric bounds, string lengths and patterns. Any drift fails here before a
user meets a spec the API server accepts but the operator cannot parse (or the reverse).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from scalingdemo_operator.spec import ScalingDemoSpec

pytestmark = pytest.mark.unit

CRD_PATH = Path(__file__).parents[2] / "crds" / "scalingdemo.dev_scalingdemos.yaml"
SCALAR_TYPES = {str: "string", int: "integer", bool: "boolean"}
CONSTRAINTS = {
    "ge": "minimum",
    "le": "maximum",
    "min_length": "minLength",
    "pattern": "pattern",
}


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text())


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    return only


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; quantities (`str | None`) stay strings."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return inner
    return annotation


def _constraints(field: FieldInfo) -> dict[str, Any]:
    found = {}
    for item in field.metadata:
        for attribute, keyword in CONSTRAINTS.items():
            value = getattr(item, attribute, None)
            if value is not None:
                found[keyword] = value
    return found


def _compare_scalar(path: str, field: FieldInfo, annotation: Any, schema: dict[str, Any]) -> None:
    if typing.get_origin(annotation) is Literal:
        assert schema["enum"] == list(typing.get_args(annotation)), path
        assert schema["type"] == "string", path
    elif schema.get("x-kubernetes-int-or-string"):
        assert annotation is str, f"{path}: quantities are strings in the model"
    elif typing.get_origin(annotation) is dict:
        assert schema["type"] == "object", path
        assert schema["additionalProperties"] == {"type": "string"}, path
        assert schema.get("maxProperties") == _max_length(field), path
        return
    else:
        assert schema["type"] == SCALAR_TYPES[annotation], path
    expected = {key: schema[key] for key in CONSTRAINTS.values() if key in schema}
    if annotation is str and "maxLength" in schema:
        expected["maxLength"] = schema["maxLength"]
    found = _constraints(field)
    if annotation is str and _max_length(field) is not None:
        found["maxLength"] = _max_length(field)
    assert found == expected, path
    if not field.is_required():
        assert schema.get("default") == field.default, f"{path}: default"


def _max_length(field: FieldInfo) -> int | None:
    return next((item.max_length for item in field.metadata if hasattr(item, "max_length")), None)


def _compare(model: type[BaseModel], schema: dict[str, Any], path: str) -> None:
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    properties = schema.get("properties", {})
    assert set(fields) == set(properties), f"{path}: fields differ"
    required = {alias for alias, field in fields.items() if field.is_required()}
    assert required == set(schema.get("required", [])), f"{path}: required fields differ"
    for alias, field in fields.items():
        child, annotation = properties[alias], _unwrap(field.annotation)
        where = f"{path}.{alias}"
        assert child.get("description"), f"{where}: every field needs a description"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert child["type"] == "object", where
            if not field.is_required() and field.default is not None:
                assert child.get("default") == {}, f"{where}: default"
            _compare(annotation, child, where)
        elif typing.get_origin(annotation) is list:
            (item,) = typing.get_args(annotation)
            assert child["type"] == "array", where
            assert child.get("maxItems") == _max_length(field), where
            if typing.get_origin(item) is Literal:
                assert child["items"] == {"type": "string", "enum": list(typing.get_args(item))}
                assert child.get("default") == field.get_default(call_default_factory=True), where
            else:
                _compare(item, child["items"], f"{where}[]")
        else:
            _compare_scalar(where, field, annotation, child)


def test_the_spec_model_matches_the_crd_schema(version: dict[str, Any]) -> None:
    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    _compare(ScalingDemoSpec, spec_schema, "spec")


def test_every_status_field_is_described(version: dict[str, Any]) -> None:
    def walk(schema: dict[str, Any], path: str) -> None:
        assert schema.get("description") or path.endswith("[]"), f"{path}: no description"
        for name, child in schema.get("properties", {}).items():
            walk(child, f"{path}.{name}")
        if "items" in schema:
            walk(schema["items"], f"{path}[]")

    walk(version["schema"]["openAPIV3Schema"]["properties"]["status"], "status")


def test_the_resource_is_discoverable_and_summarised(crd: dict[str, Any], version: dict) -> None:
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        "ScalingDemo",
        "scalingdemos",
        ["sdemo"],
    )
    assert names["categories"]
    assert version["subresources"] == {"status": {}}
    columns = {column["name"]: column for column in version["additionalPrinterColumns"]}
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert {"API", "Workers", "Age"} <= set(columns)
    assert all(columns[name].get("priority") == 1 for name in ("Reason", "Endpoint", "Image"))


def test_conditions_are_a_map_keyed_on_type(version: dict[str, Any]) -> None:
    conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"][
        "conditions"
    ]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) == {
        "type",
        "status",
        "lastTransitionTime",
        "reason",
        "message",
    }
