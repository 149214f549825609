"""The spec and the app describe the same API."""
import copy

import pytest

from tests import openapi


def app_operations() -> set[tuple[str, str]]:
    import app as app_module

    return {(path, method) for path, methods in app_module.app.routes.items() for method in methods}


def test_the_spec_is_valid_openapi():
    from openapi_spec_validator import validate

    validate(openapi.spec())


def test_every_route_is_in_the_spec_and_the_spec_invents_none():
    assert app_operations() - openapi.documented_operations() == set(), "routes the spec lacks"
    assert openapi.documented_operations() - app_operations() == set(), "spec entries with no route"


def test_a_route_missing_from_the_spec_is_caught(monkeypatch):
    trimmed = copy.deepcopy(openapi.spec())
    del trimmed["paths"]["/v1/me"]
    monkeypatch.setattr(openapi, "spec", lambda: trimmed)
    assert ("/v1/me", "GET") in app_operations() - openapi.documented_operations()


def test_a_response_that_breaks_its_schema_is_caught():
    from jsonschema.exceptions import ValidationError

    with pytest.raises(ValidationError):
        openapi.check_response("POST", "/v1/sessions", 200, b'{"token": 5}')
    with pytest.raises(AssertionError, match="does not list"):
        openapi.check_response("GET", "/v1/me", 418, b"{}")
