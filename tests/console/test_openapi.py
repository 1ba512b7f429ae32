"""docs/openapi.yaml describes exactly the API the console serves: the same paths
and methods, and for each the permission the server enforces."""
import re
from pathlib import Path

import yaml

from gateway.console.app import create_app
from gateway.console.source import EventSource

SPEC = Path(__file__).parents[2] / "docs" / "openapi.yaml"
METHODS = ("get", "post", "patch", "put", "delete")


def served_operations(tmp_path):
    app = create_app(EventSource(tmp_path / "events.db", subscribe=lambda fn: None), tmp_path / "console.sqlite")
    ops = {}
    for route in app.router.routes():
        path = route.resource.canonical
        if not path.startswith("/api/") or route.method == "HEAD":
            continue
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)
        permission = getattr(route.handler, "permission", "unmarked")
        ops[(path, route.method.lower())] = "public" if permission is None else permission
    return ops


def test_spec_lists_every_served_operation_with_its_permission(tmp_path):
    spec = yaml.safe_load(SPEC.read_text())
    assert spec["openapi"].startswith("3.")
    documented = {(path, method): op["x-permission"]
                  for path, item in spec["paths"].items() for method, op in item.items() if method in METHODS}
    assert documented == served_operations(tmp_path)


def test_every_reference_in_the_spec_resolves():
    spec = yaml.safe_load(SPEC.read_text())
    refs = re.findall(r"\$ref': '#/([^']+)'", repr(spec))
    assert refs
    for ref in refs:
        node = spec
        for part in ref.split("/"):
            node = node[part]


def test_no_yaml_boolean_or_null_hides_in_a_name_or_enum():
    """`false:` or `enum: [real, false]` unquoted would be read as booleans, not names."""
    spec = yaml.safe_load(SPEC.read_text())

    def walk(node):
        if isinstance(node, dict):
            assert all(isinstance(k, str) for k in node), list(node)
            if node.get("type") == "string" and "enum" in node:
                assert all(isinstance(v, str) for v in node["enum"] if v is not None), node["enum"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(spec)
