"""What the sandbox's integration tests share: fresh merchant numbers and keys, the
control endpoints, and moving the business clock."""
from __future__ import annotations

import secrets
import uuid

from tests.integration.conftest import http


def new_sub_mchid() -> str:
    return "19" + "".join(secrets.choice("0123456789") for _ in range(8))


def new_no(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def control(stack, method, path, body=None):
    return http(method, f"{stack.urls['sandbox']}{path}", body)


def advance(stack, seconds):
    reply = control(stack, "POST", "/sandbox/clock", {"advance_s": seconds})
    assert reply.status == 200 and "due_work_errors" not in reply.json(), reply.body
    return reply.json()
