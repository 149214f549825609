"""Small things tests share: resetting per-process caches, a fake WeChat."""
from __future__ import annotations

from chalicelib.domain.customers import WeChatIdentity
from chalicelib.errors import InvalidLoginCode, LoginCodeUsed


def reset_process_caches() -> None:
    from chalicelib import clock, log
    from chalicelib.config import reset_settings
    from chalicelib.db.binding import reset_binding
    from chalicelib.secrets import get_secret
    from chalicelib.services import wiring

    reset_settings()
    reset_binding()
    clock.business_clock.cache_clear()
    get_secret.cache_clear()
    wiring.reset()
    log._configured = False
    from chalicelib.wechat.keys import pay_keys

    pay_keys.cache_clear()


class FakeMiniProgram:
    """code2Session with the sandbox's rules, in memory."""

    def __init__(self):
        self.used: set[str] = set()
        self.calls = 0

    def code2session(self, code: str) -> WeChatIdentity:
        self.calls += 1
        if code.startswith("sandbox-once-"):
            if code in self.used:
                raise LoginCodeUsed(wechat_errcode=40163)
            self.used.add(code)
            x = code.removeprefix("sandbox-once-")
        elif code.startswith("sandbox-"):
            x = code.removeprefix("sandbox-")
        elif code.startswith("openid-only-"):
            return WeChatIdentity(openid=f"o_{code.removeprefix('openid-only-')}")
        else:
            raise InvalidLoginCode(wechat_errcode=40029)
        return WeChatIdentity(openid=f"o_{x}", unionid=f"u_{x}")

    def wxacode(self, scene: str, page: str, width: int) -> bytes:
        """A plain QR of what the real code stands for (the sandbox draws the real kind)."""
        import io

        import segno

        buffer = io.BytesIO()
        segno.make(f"{page}?scene={scene}", micro=False).save(buffer, kind="png", scale=max(1, width // 60))
        return buffer.getvalue()


class FakePayments:
    """The payment provider in memory: prepay ids per out_trade_no, like WeChat."""

    def __init__(self, fail_prepay: int = 0):
        self.prepays: dict[str, object] = {}
        self.fail_prepay = fail_prepay

    def prepay(self, request) -> str:
        from chalicelib.wechat.pay import ProviderUnavailable

        if self.fail_prepay:
            self.fail_prepay -= 1
            raise ProviderUnavailable(api="prepay")
        self.prepays.setdefault(request.out_trade_no, request)
        return f"wx_prepay_{request.out_trade_no}"

    def payment_params(self, prepay_id: str) -> dict:
        return {"timeStamp": "1800000000", "nonceStr": "n" * 32, "package": f"prepay_id={prepay_id}",
                "signType": "RSA", "paySign": "sig"}

    # --- the provider's side of closing
    paid: dict = {}
    closed: set = set()
    refuse_close: int = 0

    def pay(self, out_trade_no: str, transaction_id: str = "4200000000000000000000000001") -> None:
        """Play the customer paying in the sheet, with no notification."""
        self.paid = {**self.paid, out_trade_no: transaction_id}

    def query(self, out_trade_no: str, sub_mchid: str):
        from chalicelib.wechat.pay import ProviderTransaction

        request = self.prepays[out_trade_no]
        if out_trade_no in self.paid:
            raw = {"sp_mchid": "1900000100", "sp_appid": "wx5f0c0ffee5a1d001", "sub_mchid": request.sub_mchid,
                   "out_trade_no": out_trade_no, "transaction_id": self.paid[out_trade_no], "trade_state": "SUCCESS",
                   "amount": {"total": request.total_fen, "payer_total": request.total_fen, "currency": "CNY"}}
            return ProviderTransaction(out_trade_no, "SUCCESS", self.paid[out_trade_no], request.total_fen,
                                       request.total_fen, None, raw)
        state = "CLOSED" if out_trade_no in self.closed else "NOTPAY"
        return ProviderTransaction(out_trade_no, state, None, None, None, None, {"trade_state": state})

    def close(self, out_trade_no: str, sub_mchid: str) -> None:
        from chalicelib.wechat.pay import ProviderRefused

        if self.refuse_close:
            self.refuse_close -= 1
            raise ProviderRefused("ORDER_NOT_CLOSABLE", "too early", 400)
        if out_trade_no in self.paid:
            raise ProviderRefused("ORDERPAID", "paid", 400)
        self.closed = self.closed | {out_trade_no}


class _FakeRefunds:
    """Mixed into FakePayments: the provider's refunds in memory."""


def _install_refunds():
    from chalicelib.wechat.pay import ProviderRefund

    def refund(self, out_refund_no, out_trade_no, sub_mchid, refund_fen, total_fen, reason, notify_url):
        if not hasattr(self, "refunds"):
            self.refunds = {}
        self.refunds.setdefault(out_refund_no, {"status": "PROCESSING", "amount": refund_fen,
                                                "out_trade_no": out_trade_no})
        return ProviderRefund(out_refund_no, "rid_" + out_refund_no, self.refunds[out_refund_no]["status"],
                              refund_fen, None, {})

    def query_refund(self, out_refund_no, sub_mchid):
        entry = self.refunds[out_refund_no]
        return ProviderRefund(out_refund_no, "rid_" + out_refund_no, entry["status"], entry["amount"], None, {})

    def finish_refund(self, out_refund_no, status):
        self.refunds[out_refund_no]["status"] = status

    FakePayments.refund = refund
    FakePayments.query_refund = query_refund
    FakePayments.finish_refund = finish_refund


_install_refunds()


class FakeOutboxMarks:
    """The outbox repository's consumed marks, in memory (for consumer tests)."""

    def __init__(self):
        self.done = set()

    def is_consumed(self, outbox_id):
        return outbox_id in self.done

    def mark_consumed(self, outbox_id, at):
        self.done.add(outbox_id)
        return True
