"""Integration tests start their own stack: free ports, a temporary data folder,
real HTTP. They never touch a stack left running by `make run`."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

from infra.local.environment import StackPorts
from tests.privacy import assert_no_personal_data
from infra.local.stack import LocalStack, free_port


@dataclass
class HttpReply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 30) -> HttpReply:
    data = body if isinstance(body, (bytes, type(None))) else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode())
    headers = dict(headers or {})
    if data is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = HttpReply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        reply = HttpReply(exc.code, dict(exc.headers), exc.read())
    assert_no_personal_data(url, reply.body)     # every back-office answer of the suite
    return reply


def new_stack(data_dir) -> LocalStack:
    return LocalStack(data_dir, StackPorts(api=free_port(), dynamodb=free_port(), sandbox=free_port()),
                      log=lambda line: None)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    running = new_stack(tmp_path_factory.mktemp("stack"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def api(stack):
    return stack.urls["api"]


@pytest.fixture
def sandbox(stack):
    return stack.urls["sandbox"]


def login(api: str, code: str) -> HttpReply:
    return http("POST", f"{api}/v1/sessions", {"code": code})


def assert_contract_error(reply: HttpReply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    body = reply.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"] and isinstance(body["error"]["details"], dict)
    assert b"Traceback" not in reply.body
