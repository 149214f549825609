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


class ProcessKilled(BaseException):
    """A simulated process kill in the middle of a step: a BaseException, so the job's
    per-plan ``except Exception`` does not catch it (nothing after it runs)."""


class FakeProfitSharing:
    """WeChat Pay's partner profit sharing (``ProfitSharingProvider``) in memory, with the
    sandbox's rules (``infra/local/sandbox/profitsharing.py``):

    * a payment is registered with ``payment(...)`` and must be ``settle``d (and a minute
      old) before it can be split or unfrozen: ``SplitNotReady`` until then;
    * ``out_order_no`` is the idempotency key: the same number with the same receivers
      answers the order as it stands (counted once in ``accepted``), with other
      receivers ``ProviderRefused("PARAM_ERROR")``;
    * money, cumulatively over the payment's splits (receivers not CLOSED):
      ``cap = floor(total × max_ratio / 10000)`` and ``unsplit = total − fee − split``;
      asking for more is ``SplitRefused``;
    * an accepted order is PROCESSING with its receivers PENDING, and FINISHED
      ``result_after_s`` later (of ``self.now``, set by the test): each receiver SUCCESS,
      or CLOSED with a fail_reason — NO_RELATION when it is not added with the
      sub-merchant, or an injected ``fail_once`` / ``fail_always`` reason per account
      (decided when the split is accepted);
    * an unfreeze (or a split with ``unfreeze_unsplit``) closes the payment to further
      splits; the rest goes to the sub-merchant;
    * ``unavailable`` (api -> times) answers ``ProviderUnavailable`` that many times;
      ``crash_once(when, api)`` raises ``ProcessKilled`` before or after carrying the next
      such call out; ``delay_s`` makes every split/unfreeze call take that long (races);
      ``hooks`` (api -> callable) runs something once when that api is next called (e.g.
      another job run, to lose a race deterministically).
    * returns (分账回退, ``infra/local/sandbox/returns.py``): synchronous and idempotent per
      ``out_return_no``; at most what the MERCHANT_ID receiver got SUCCESS in that split
      order less its SUCCESS returns (else ``ProviderRefused("INVALID_REQUEST")``); FAILED
      with BALANCE_NOT_ENOUGH when ``balances[account]`` (none: ample) is too low.
    """

    def __init__(self, max_ratio_bps: int = 3000, result_after_s: float = 5):
        import threading

        self.now = 0.0
        self.result_after_s = result_after_s
        self.default_max_ratio = max_ratio_bps
        self.max_ratios: dict[str, int] = {}
        self.payments: dict[str, dict] = {}         # transaction_id -> total, fee, sub_mchid, paid_at, settled
        self.orders: dict[str, dict] = {}           # out_order_no -> the provider's split or unfreeze order
        self.receivers: dict[str, set] = {}         # sub_mchid -> {(type, account)}
        self.accepted: dict[str, int] = {}          # out_order_no -> operations carried out under it
        self.operations: list[dict] = []            # every operation carried out, in order
        self.added: list[tuple] = []                # every add_receiver call: (sub_mchid, type, account)
        self.calls: list[tuple] = []                # (api, out_order_no or key)
        self.fail_once: dict[str, str] = {}         # account -> fail_reason for its next split
        self.fail_always: dict[str, str] = {}       # account -> fail_reason for every split
        self.unavailable: dict[str, int] = {}       # api -> times to answer ProviderUnavailable
        self.crashes: dict[str, str] = {}           # api -> "before" | "after" (once)
        self.delay_s = 0.0
        self.hooks: dict[str, object] = {}          # api -> a callable run once when that api is next called
        self.unfrozen: dict[str, float] = {}        # transaction_id -> fen given back to the sub-merchant
        self.lock = threading.RLock()
        self.balances: dict[str, int] = {}          # account -> available balance for returns (absent: ample)
        self.returns: dict[str, dict] = {}          # out_return_no -> the provider's return
        self.returns_accepted: dict[str, int] = {}  # out_return_no -> returns carried out under it
        self.no_return_auth: set[str] = set()       # accounts that did not agree to returns (NO_AUTH)

    # --- the test's controls ------------------------------------------------------------------
    def payment(self, transaction_id: str, sub_mchid: str, total_fen: int, fee_fen: int, paid_at: float,
                settled: bool = False) -> None:
        self.payments[transaction_id] = {"sub_mchid": sub_mchid, "total": total_fen, "fee": fee_fen,
                                         "paid_at": paid_at, "settled": settled}

    def settle(self, transaction_id: str) -> None:
        self.payments[transaction_id]["settled"] = True

    def forget_receiver(self, sub_mchid: str, account: str) -> None:
        self.receivers[sub_mchid] = {r for r in self.receivers.get(sub_mchid, set()) if r[1] != account}

    def crash_once(self, when: str, api: str = "request_split") -> None:
        assert when in ("before", "after")
        self.crashes[api] = when

    def split_fen(self, transaction_id: str) -> int:
        """What splits of the payment took or hold (receivers not CLOSED)."""
        with self.lock:
            self._bring_up_to_date(transaction_id)
            return sum(r["amount"] for o in self.orders.values() if o["transaction_id"] == transaction_id
                       and o["kind"] == "SPLIT" for r in o["receivers"] if r["result"] != "CLOSED")

    def received(self, transaction_id: str, account: str) -> int:
        """What one receiver got (SUCCESS) from this payment."""
        with self.lock:
            self._bring_up_to_date(transaction_id)
            return sum(r["amount"] for o in self.orders.values() if o["transaction_id"] == transaction_id
                       and o["kind"] == "SPLIT" for r in o["receivers"]
                       if r["account"] == account and r["result"] == "SUCCESS")

    # --- internals ----------------------------------------------------------------------------
    def _enter(self, api: str, key: str) -> None:
        from chalicelib.wechat.pay import ProviderUnavailable

        self.calls.append((api, key))
        hook = self.hooks.pop(api, None)
        if hook is not None:
            hook()
        if self.unavailable.get(api, 0) > 0:
            self.unavailable[api] -= 1
            raise ProviderUnavailable(api=api)
        if self.crashes.get(api) == "before":
            del self.crashes[api]
            raise ProcessKilled(f"killed before {api} {key}")

    def _leave(self, api: str, key: str) -> None:
        if self.crashes.get(api) == "after":
            del self.crashes[api]
            raise ProcessKilled(f"killed after {api} {key}")

    def _unsplit(self, transaction_id: str) -> int:
        if transaction_id in self.unfrozen:
            return 0
        pay = self.payments[transaction_id]
        split = sum(r["amount"] for o in self.orders.values() if o["transaction_id"] == transaction_id
                    and o["kind"] == "SPLIT" for r in o["receivers"] if r["result"] != "CLOSED")
        return max(0, pay["total"] - pay["fee"] - split)

    def _bring_up_to_date(self, transaction_id: str) -> None:
        due = sorted((o for o in self.orders.values() if o["transaction_id"] == transaction_id
                      and o["state"] == "PROCESSING" and o["finish_at"] <= self.now), key=lambda o: o["seq"])
        for order in due:
            for receiver in order["receivers"]:
                if order["kind"] == "UNFREEZE":
                    reason = None
                elif receiver["planned_fail_reason"]:
                    reason = receiver["planned_fail_reason"]
                elif (receiver["type"], receiver["account"]) not in self.receivers.get(order["sub_mchid"], set()):
                    reason = "NO_RELATION"
                else:
                    reason = None
                receiver["result"] = "CLOSED" if reason else "SUCCESS"
                receiver["fail_reason"] = reason
            order["state"] = "FINISHED"
            if (order["kind"] == "UNFREEZE" or order["unfreeze_unsplit"]) and transaction_id not in self.unfrozen:
                self.unfrozen[transaction_id] = self._unsplit(transaction_id)

    def _answer(self, order: dict):
        from chalicelib.wechat.pay import SplitReceiverResult, SplitResult

        receivers = tuple(SplitReceiverResult(r["type"], r["account"], r["amount"], r["description"], r["result"],
                                              r.get("fail_reason"), r["detail_id"], None)
                          for r in order["receivers"])
        return SplitResult(order["out_order_no"], order["transaction_id"], order["order_id"], order["state"],
                           receivers, {})

    def _check_open(self, sub_mchid: str, transaction_id: str) -> dict:
        from chalicelib.wechat.pay import ProviderRefused, SplitNotReady

        pay = self.payments.get(transaction_id)
        if pay is None:
            raise ProviderRefused("RESOURCE_NOT_EXISTS", "微信订单号不存在", 404)
        if pay["sub_mchid"] != sub_mchid:
            raise ProviderRefused("INVALID_REQUEST", "非本商户的订单不支持分账", 400)
        if self.now < pay["paid_at"] + 60 or not pay["settled"]:
            raise SplitNotReady(api="request_split", provider_code="INVALID_REQUEST",
                                provider_message="订单处理中，请稍后重试")
        closing = any(o["transaction_id"] == transaction_id and (o["kind"] == "UNFREEZE" or o["unfreeze_unsplit"])
                      for o in self.orders.values())
        if closing or transaction_id in self.unfrozen:
            raise ProviderRefused("INVALID_REQUEST", "订单剩余资金已解冻(完结分账)，不能再分账", 400)
        return pay

    def _new_order(self, kind: str, sub_mchid: str, transaction_id: str, out_order_no: str, receivers: list,
                   unfreeze_unsplit: bool) -> dict:
        order = {"kind": kind, "sub_mchid": sub_mchid, "transaction_id": transaction_id, "out_order_no": out_order_no,
                 "order_id": f"3008{len(self.orders) + 1:024d}", "state": "PROCESSING", "seq": len(self.orders),
                 "finish_at": self.now + self.result_after_s, "unfreeze_unsplit": unfreeze_unsplit,
                 "receivers": receivers}
        self.orders[out_order_no] = order
        self.accepted[out_order_no] = self.accepted.get(out_order_no, 0) + 1
        self.operations.append({"kind": kind, "out_order_no": out_order_no, "unfreeze_unsplit": unfreeze_unsplit,
                                "receivers": [(r["type"], r["account"], r["amount"]) for r in receivers]})
        return order

    # --- ProfitSharingProvider ------------------------------------------------------------------
    def add_receiver(self, sub_mchid: str, receiver) -> None:
        with self.lock:
            self._enter("add_receiver", f"{sub_mchid}#{receiver.account}")
            self.added.append((sub_mchid, receiver.type, receiver.account))
            self.receivers.setdefault(sub_mchid, set()).add((receiver.type, receiver.account))
            self._leave("add_receiver", receiver.account)

    def request_split(self, sub_mchid: str, transaction_id: str, out_order_no: str, receivers: list,
                      unfreeze_unsplit: bool):
        import time

        from chalicelib.wechat.pay import ProviderRefused, SplitRefused

        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self._enter("request_split", out_order_no)
            asked = sorted((r.type, r.account, r.amount_fen) for r in receivers)
            existing = self.orders.get(out_order_no)
            if existing is not None:
                self._bring_up_to_date(transaction_id)
                stored = sorted((r["type"], r["account"], r["amount"]) for r in existing["receivers"])
                if existing["kind"] != "SPLIT" or stored != asked or existing["transaction_id"] != transaction_id:
                    raise ProviderRefused("PARAM_ERROR", "分账接收方与原请求不一致", 400)
                answer = self._answer(existing)
            else:
                self._bring_up_to_date(transaction_id)
                pay = self._check_open(sub_mchid, transaction_id)
                wanted = sum(r.amount_fen for r in receivers)
                if wanted > self._unsplit(transaction_id):
                    raise SplitRefused("NOT_ENOUGH", "分账金额不足：超过订单剩余待分金额", 403)
                cap = pay["total"] * self.max_ratios.get(sub_mchid, self.default_max_ratio) // 10000
                split = pay["total"] - pay["fee"] - self._unsplit(transaction_id)
                if split + wanted > cap:
                    raise SplitRefused("INVALID_REQUEST", "分账金额超出最大分账比例", 400)
                parts = []
                for n, r in enumerate(receivers):
                    reason = self.fail_once.pop(r.account, None) or self.fail_always.get(r.account)
                    parts.append({"type": r.type, "account": r.account, "amount": r.amount_fen,
                                  "description": r.description, "result": "PENDING", "fail_reason": None,
                                  "planned_fail_reason": reason, "detail_id": f"36{len(self.orders):010d}{n:03d}"})
                answer = self._answer(self._new_order("SPLIT", sub_mchid, transaction_id, out_order_no, parts,
                                                      unfreeze_unsplit))
            self._leave("request_split", out_order_no)
            return answer

    def query_split(self, sub_mchid: str, transaction_id: str, out_order_no: str):
        from chalicelib.wechat.pay import ProviderRefused

        with self.lock:
            self._enter("query_split", out_order_no)
            order = self.orders.get(out_order_no)
            if order is None or order["sub_mchid"] != sub_mchid or order["transaction_id"] != transaction_id:
                raise ProviderRefused("RESOURCE_NOT_EXISTS", "记录不存在", 404)
            self._bring_up_to_date(transaction_id)
            answer = self._answer(order)
            self._leave("query_split", out_order_no)
            return answer

    def unfreeze(self, sub_mchid: str, transaction_id: str, out_order_no: str, description: str):
        import time

        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self._enter("unfreeze", out_order_no)
            existing = self.orders.get(out_order_no)
            if existing is not None:      # the same unfreeze again (or a split's number): answered, nothing done
                self._bring_up_to_date(transaction_id)
                answer = self._answer(existing)
            else:
                self._bring_up_to_date(transaction_id)
                self._check_open(sub_mchid, transaction_id)
                left = self._unsplit(transaction_id)
                parts = [{"type": "MERCHANT_ID", "account": sub_mchid, "amount": left, "description": description,
                          "result": "PENDING", "fail_reason": None, "planned_fail_reason": None,
                          "detail_id": f"36{len(self.orders):010d}000"}] if left else []
                answer = self._answer(self._new_order("UNFREEZE", sub_mchid, transaction_id, out_order_no, parts,
                                                      True))
            self._leave("unfreeze", out_order_no)
            return answer

    def unsplit_amount(self, transaction_id: str) -> int:
        with self.lock:
            self._enter("unsplit_amount", transaction_id)
            self._bring_up_to_date(transaction_id)
            return self._unsplit(transaction_id)

    def max_ratio(self, sub_mchid: str) -> int:
        with self.lock:
            self._enter("max_ratio", sub_mchid)
            return self.max_ratios.get(sub_mchid, self.default_max_ratio)

    # --- returns (分账回退) -------------------------------------------------------------------
    def _return_answer(self, row: dict):
        from chalicelib.wechat.pay import ReturnResult

        return ReturnResult(row["out_return_no"], row["return_id"], row["out_order_no"], row["return_mchid"],
                            row["amount"], row["result"], row["fail_reason"], dict(row))

    def returned(self, out_order_no: str, account: str) -> int:
        """What SUCCESS returns took back from one receiver of one split order."""
        return sum(r["amount"] for r in self.returns.values() if r["out_order_no"] == out_order_no
                   and r["return_mchid"] == account and r["result"] == "SUCCESS")

    def create_return(self, sub_mchid: str, out_order_no: str, out_return_no: str, return_mchid: str,
                      amount_fen: int, description: str):
        from chalicelib.wechat.pay import ProviderRefused

        with self.lock:
            self._enter("create_return", out_return_no)
            existing = self.returns.get(out_return_no)
            if existing is not None:
                if (existing["sub_mchid"], existing["out_order_no"], existing["return_mchid"], existing["amount"],
                        existing["description"]) != (sub_mchid, out_order_no, return_mchid, amount_fen, description):
                    raise ProviderRefused("PARAM_ERROR", "商户回退单号已使用，请求参数与原请求不一致", 400)
                answer = self._return_answer(existing)
            else:
                order = self.orders.get(out_order_no)
                if order is None or order["sub_mchid"] != sub_mchid or order["kind"] != "SPLIT":
                    raise ProviderRefused("RESOURCE_NOT_EXISTS", "分账单不存在", 404)
                self._bring_up_to_date(order["transaction_id"])
                if order["state"] != "FINISHED":
                    raise ProviderRefused("INVALID_REQUEST", "分账单处理中，请分账完成后再回退", 400)
                got = [r for r in order["receivers"] if r["type"] == "MERCHANT_ID" and r["account"] == return_mchid
                       and r["result"] == "SUCCESS"]
                if not got:
                    raise ProviderRefused("INVALID_REQUEST", "回退商户号不是该分账单中分账成功的商户类型分账接收方", 400)
                if return_mchid in self.no_return_auth:
                    raise ProviderRefused("NO_AUTH", "回退方未开通分账回退功能", 403)
                if sum(r["out_order_no"] == out_order_no for r in self.returns.values()) >= 50:
                    raise ProviderRefused("INVALID_REQUEST", "对同一笔分账单最多能发起50次回退请求", 400)
                if amount_fen > sum(r["amount"] for r in got) - self.returned(out_order_no, return_mchid):
                    raise ProviderRefused("INVALID_REQUEST", "回退金额超过分账接收方可回退金额", 400)
                balance = self.balances.get(return_mchid)
                result, reason = ("SUCCESS", None) if balance is None or balance >= amount_fen \
                    else ("FAILED", "BALANCE_NOT_ENOUGH")
                if result == "SUCCESS" and balance is not None:
                    self.balances[return_mchid] = balance - amount_fen
                row = {"sub_mchid": sub_mchid, "out_order_no": out_order_no, "out_return_no": out_return_no,
                       "return_id": f"3008{len(self.returns) + 1:024d}", "return_mchid": return_mchid,
                       "amount": amount_fen, "description": description, "result": result, "fail_reason": reason}
                self.returns[out_return_no] = row
                self.returns_accepted[out_return_no] = self.returns_accepted.get(out_return_no, 0) + 1
                answer = self._return_answer(row)
            self._leave("create_return", out_return_no)
            return answer

    def query_return(self, sub_mchid: str, out_order_no: str, out_return_no: str):
        from chalicelib.wechat.pay import ProviderRefused

        with self.lock:
            self._enter("query_return", out_return_no)
            row = self.returns.get(out_return_no)
            if row is None or row["sub_mchid"] != sub_mchid or row["out_order_no"] != out_order_no:
                raise ProviderRefused("RESOURCE_NOT_EXISTS", "记录不存在", 404)
            answer = self._return_answer(row)
            self._leave("query_return", out_return_no)
            return answer
