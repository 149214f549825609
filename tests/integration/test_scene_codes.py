"""A store scene made over HTTP prints as a real mini-program code (through the
sandbox's WeChat API) and as a plain QR code, and both decode to the scene."""
import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.local.tokens import mint_backoffice_token
from tests.integration.conftest import assert_contract_error, http

pytestmark = pytest.mark.integration
STORE = "store-cd-chunxi"


def decode_png(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return results[0].text


def test_a_store_scene_prints_as_codes_that_carry_it(stack, api):
    token = mint_backoffice_token(Path(stack.data_dir), "brand", "brand-lumen")
    auth = {"Authorization": f"Bearer {token}"}
    made = http("POST", f"{api}/v1/admin/scenes", {"kind": "store", "store_id": STORE}, auth)
    assert made.status == 201, made.body
    scene = made.json()["scene"]
    assert scene.startswith("s.") and made.json()["store_id"] == STORE

    wxacode = http("GET", f"{api}/v1/admin/scenes/{scene}/wxacode", headers={**auth, "Accept": "image/png"})
    assert wxacode.status == 200, wxacode.body[:300]
    assert wxacode.headers["Content-Type"] == "image/png" and wxacode.body[:8] == b"\x89PNG\r\n\x1a\n"
    query = parse_qs(urlsplit(decode_png(wxacode.body)).query)
    assert query["scene"] == [scene] and query["page"] == ["pages/scan/index"]

    qr = http("GET", f"{api}/v1/admin/scenes/{scene}/qr", headers={**auth, "Accept": "image/png"})
    assert qr.status == 200 and qr.headers["Content-Type"] == "image/png"
    assert decode_png(qr.body) == f"https://mall.storelink.invalid/s/{scene}"

    retired = http("POST", f"{api}/v1/admin/scenes/{scene}/retire", headers=auth)
    assert retired.status == 200 and retired.json()["status"] == "RETIRED"
    assert_contract_error(http("GET", f"{api}/v1/admin/scenes/{scene}/wxacode",
                               headers={**auth, "Accept": "image/png"}), 409, "SCENE_RETIRED")
