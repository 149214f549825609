"""./storelink demo: one customer's story against the running stack, narrated.

Login, browse a store's shelf, order, pay in the sandbox, the signed callback, ship,
the shipping information reaching WeChat, receipt confirmed, settlement — printing
each step with the state of the order, the stock and the provider after it.
"""
from __future__ import annotations

import json
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

STORE = "store-cd-chunxi"
SKU = "LM-MS-WL"


class DemoFailed(RuntimeError):
    pass


class Stack:
    def __init__(self, data_dir: Path):
        try:
            self.info = json.loads((data_dir / "stack.json").read_text())
        except (OSError, ValueError) as exc:
            raise DemoFailed(f"no running stack on {data_dir}: start it with `make run` first") from exc
        self.api, self.sandbox = self.info["api_url"], self.info["sandbox_url"]

    def call(self, method: str, url: str, body=None, headers=None, expect=(200, 201, 204)):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except OSError as exc:
            raise DemoFailed(f"{method} {url}: {exc}") from exc
        payload = json.loads(raw) if raw else None
        if status not in expect:
            raise DemoFailed(f"{method} {url} answered {status}: {payload}")
        return payload


def main(data_dir: Path, out=print) -> int:
    from infra.local.tokens import mint_backoffice_token

    stack = Stack(data_dir)
    step = iter(range(1, 100))

    def say(title: str, detail: str = "") -> None:
        out(f"\n{next(step):>2}. {title}" + (f"\n    {detail}" if detail else ""))

    def state(order_id: str, token: str) -> None:
        order = stack.call("GET", f"{stack.api}/v1/orders/{order_id}", headers=token)
        provider = stack.call("GET", f"{stack.sandbox}/sandbox/transactions/{order_id}", expect=(200, 404)) or {}
        office = {"Authorization": f"Bearer {mint_backoffice_token(data_dir, 'store', STORE)}"}
        level = stack.call("GET", f"{stack.api}/v1/admin/stock/store:{STORE}/{SKU}", headers=office, expect=(200, 404))
        warehouse = stack.call("GET", f"{stack.api}/v1/admin/stock/warehouse:cloud/{SKU}",
                               headers={"Authorization": f"Bearer {mint_backoffice_token(data_dir, 'brand', 'brand-lumen')}"})
        out(f"    order     {order['status']:<16} payable {order['amounts']['payable_fen']} fen, "
            f"refunded {order['refunded_fen']} fen")
        out(f"    stock     warehouse {SKU}: on hand {warehouse['on_hand']}, reserved {warehouse['reserved']}, "
            f"available {warehouse['available']}"
            + (f"; store shelf available {level['available']}" if "available" in (level or {}) else ""))
        if provider:
            refunded = provider.get("refunded_fen", 0)
            out(f"    provider  trade_state {provider.get('trade_state')}, settled {bool(provider.get('settled_at'))}"
                f", refunded {refunded} fen")

    who = f"demo{secrets.token_hex(3)}"
    session = stack.call("POST", f"{stack.api}/v1/sessions", {"code": f"sandbox-{who}"})
    token = {"Authorization": f"Bearer {session['token']}"}
    say("A customer opens the mall in WeChat and signs in", f"customer {session['customer_id']} (new: {session['new_customer']})")

    shelf = stack.call("GET", f"{stack.api}/v1/stores/{STORE}/products?limit=5")
    say(f"They browse the shelf of {shelf['store']['name']}",
        "; ".join(f"{i['name']} {i['price_fen'] / 100:.2f} CNY" for i in shelf["items"][:3]) + " ...")

    order = stack.call("POST", f"{stack.api}/v1/orders", {
        "store_id": STORE, "lines": [{"sku": SKU, "quantity": 2}],
        "fulfillment": {"type": "warehouse", "address": {"recipient": "Demo Customer", "phone": "13800138000",
                                                         "city": "Chengdu", "detail": "1 Chunxi Road"}}},
        headers={**token, "Idempotency-Key": f"demo-{who}"})
    say("They order 2 wireless mice for delivery from the cloud warehouse",
        f"order {order['order_id']}; the server priced it at {order['amounts']['payable_fen']} fen; "
        f"wx.requestPayment package {order['payment']['package']}")
    state(order["order_id"], token)

    paid = stack.call("POST", f"{stack.sandbox}/sandbox/pay", {"out_trade_no": order["order_id"], "notify": "once"})
    stack.call("POST", f"{stack.sandbox}/sandbox/clock", {"advance_s": 1})
    say("They pay in WeChat's payment sheet; WeChat Pay sends a signed, encrypted notification",
        f"transaction {paid['transaction_id']}")
    state(order["order_id"], token)

    office = {"Authorization": f"Bearer {mint_backoffice_token(data_dir, 'dealer', 'dealer-shu')}"}
    stack.call("POST", f"{stack.api}/v1/admin/orders/{order['order_id']}/ship",
               {"carrier": "SF Express", "tracking_no": f"SF{secrets.randbelow(10**10):010d}"}, headers=office)
    stack.call("POST", f"{stack.sandbox}/sandbox/clock", {"advance_s": 1})  # the outbox uploads the shipping info
    say("The dealer ships it; the shipping information goes to WeChat")
    state(order["order_id"], token)

    stack.call("POST", f"{stack.sandbox}/sandbox/orders/{order['order_id']}/confirm-receipt", expect=(200, 204, 409))
    stack.call("POST", f"{stack.api}/v1/orders/{order['order_id']}/confirm-receipt", headers=token)
    say("The parcel arrives; the customer confirms receipt (WeChat settles the payment)")
    state(order["order_id"], token)
    refund = stack.call("POST", f"{stack.api}/v1/orders/{order['order_id']}/refunds",
                        {"lines": [{"sku": SKU, "quantity": 1}], "reason": "one is enough"},
                        headers={**token, "Idempotency-Key": f"demo-refund-{who}"})
    say("A week later they return one mouse: a return request for the store's dealer",
        f"refund {refund['refund_id']}: {refund['amount_fen']} fen, {refund['status']}")
    approved = stack.call("POST", f"{stack.api}/v1/admin/refunds/{refund['refund_id']}/approve", {"restock": True},
                          headers=office)
    stack.call("POST", f"{stack.sandbox}/sandbox/clock", {"advance_s": 10})  # the provider pays it back
    say("The dealer approves and restocks it; WeChat Pay refunds the customer and says so",
        f"out_refund_no {approved['out_refund_no']}")
    state(order["order_id"], token)

    final = stack.call("GET", f"{stack.api}/v1/orders/{order['order_id']}", headers=token)
    if final["status"] != "COMPLETED" or final["refunded_fen"] != refund["amount_fen"]:
        raise DemoFailed(f"the order ended {final['status']} with {final['refunded_fen']} fen refunded")
    if [r["status"] for r in final["refunds"]] != ["SUCCESS"]:
        raise DemoFailed(f"the refund ended {final['refunds']}")
    out(f"\nThe order reached its end: COMPLETED, {final['refunded_fen']} fen refunded for the returned unit, "
        "stock moved exactly once each way, the provider's books agreeing.")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".local")))
