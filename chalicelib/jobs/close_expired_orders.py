"""The close-expired-orders job (every minute): a thin entry point."""
from __future__ import annotations


def run() -> dict:
    from chalicelib.config import settings
    from chalicelib.log import get_logger
    from chalicelib.services import wiring
    from chalicelib.services.closing import close_expired_orders

    s = settings()
    from chalicelib.services.fulfilment import complete_long_shipped

    now = wiring.now()
    from chalicelib.services.payments import late_payment_refunder

    counts = close_expired_orders(orders=wiring.orders(), payment_records=wiring.payment_records(),
                                  payments=wiring.payments(), now=now, sp_mchid=s.sp_mchid,
                                  sp_appid=s.sp_appid, on_late_payment=late_payment_refunder())
    counts["completed"] = complete_long_shipped(fulfilment=wiring.fulfilment(), now=now,
                                                after_days=s.auto_receipt_days)
    from chalicelib.services.refunds import advance_open_refunds

    counts["refunds"] = advance_open_refunds(refunds=wiring.refunds(), payments=wiring.payments(), now=now,
                                             notify_url=s.notify_url)
    get_logger("storelink.jobs").info("close-expired-orders", extra={"fields": counts})
    return counts
