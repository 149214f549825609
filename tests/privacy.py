"""No back-office answer may carry a full phone number or a raw openid (M7).

Every response a test sees from ``/v1/admin/…`` — in-process through
tests/openapi.check_response, over HTTP through the integration suite's ``http`` —
passes through ``assert_no_personal_data``. The sandbox's openids are ``o_<x>``
(mini-program) and ``oa_<x>`` (official account); masked ones (``o_a***ce``) pass.
"""
from __future__ import annotations

import re

RAW_OPENID = re.compile(r"(?<![\w*])oa?_[A-Za-z0-9_-]+(?![\w*-])")
FULL_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
BACK_OFFICE = "/v1/admin/"
# The one back-office answer that carries a phone on purpose: the delivering store's
# contact for one order (never a list, never the brand's).
ON_PURPOSE = re.compile(r"/v1/admin/orders/[^/]+/contact$")


def personal_data_in(body: bytes | str) -> list[str]:
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    return RAW_OPENID.findall(text) + FULL_PHONE.findall(text)


def assert_no_personal_data(path: str, body: bytes | str | None) -> None:
    if not body or BACK_OFFICE not in path or ON_PURPOSE.search(path.split("?")[0]):
        return
    if isinstance(body, (bytes, bytearray)) and body[:4] == b"\x89PNG":
        return
    found = personal_data_in(body)
    assert not found, f"{path} answered personal data in the clear: {found[:3]}"
