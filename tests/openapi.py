"""docs/openapi.yaml held against the app: every route described, every response a
test sees valid against its documented schema."""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

SPEC_PATH = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@functools.lru_cache(maxsize=1)
def spec() -> dict:
    import yaml

    return yaml.safe_load(SPEC_PATH.read_text())


def _resolve(node, root):
    if isinstance(node, dict):
        if "$ref" in node:
            target = root
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _resolve(target, root)
        return {k: _resolve(v, root) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, root) for v in node]
    return node


@functools.lru_cache(maxsize=1)
def _path_patterns() -> list[tuple[re.Pattern, str]]:
    patterns = []
    for template in spec()["paths"]:
        regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"[^/]+", re.escape(template)) + "$"
        patterns.append((re.compile(regex), template))
    # Literal segments beat parameters: the longest literal text first.
    return sorted(patterns, key=lambda p: -len(re.sub(r"\{\w+\}", "", p[1])))


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in spec()["paths"].items()
            for method in item if method in METHODS}


def check_response(method: str, url: str, status: int, body: bytes) -> None:
    from openapi_schema_validator import OAS30Validator

    from tests.privacy import assert_no_personal_data

    path = urlsplit(url).path
    assert_no_personal_data(path, body)
    template = next((t for regex, t in _path_patterns() if regex.match(path)), None)
    assert template is not None, f"{path} is not in docs/openapi.yaml"
    operation = spec()["paths"][template].get(method.lower())
    if operation is None:
        assert status == 405, f"{method} {template} is not documented but answered {status}"
        return
    responses = operation["responses"]
    documented = responses.get(str(status)) or responses.get("default")
    assert documented is not None, f"{method} {template} answered {status}, which the spec does not list"
    schema = _resolve(documented, spec()).get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        OAS30Validator(schema).validate(json.loads(body))


class ValidatingHttp:
    """Wraps chalice.test.Client.http: every response is checked against the spec."""

    def __init__(self, http):
        self._http = http

    def __getattr__(self, name):
        call = getattr(self._http, name)
        if name.upper() not in [m.upper() for m in METHODS] and name != "request":
            return call

        def checked(path, *args, **kwargs):
            response = call(path, *args, **kwargs)
            check_response(name, path, response.status_code, response.body)
            return response

        return checked


class ValidatingClient:
    """A chalice.test.Client whose ``http`` checks every response against the spec."""

    def __init__(self, client):
        self.client = client
        self.http = ValidatingHttp(client.http)
