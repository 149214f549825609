"""Official-account events: following the account through one of our parametric QR
codes (``subscribe`` with ``qrscene_<scene>``), or scanning one while following
(``SCAN``), is a scan like ``POST /v1/scans`` — same rules, channel OA_SUBSCRIBE/OA_SCAN.

**Who it is.** The event names the follower by their openid under the OA appid, which
is not the mini-program's. The unionid bridges the two: the OA's user info gives it,
the customer is found by ``unionid#…`` (or created, exactly as a first mini-program
login would, with no mini-program openid until that login), and ``oa_openid#…`` is
recorded so the follower's next event needs no call to WeChat.

**Once.** WeChat retries a push it got no answer to within 5 s, up to 3 times, with
the same FromUserName and CreateTime. The event is claimed under that key with one
conditional put before anything is applied; a retry finds the claim and changes
nothing. The crash window (claimed, not applied) is closed on the side of applying
at most once, because applying twice cannot be undone (a second scan record and
funnel event) while missing one scan costs little (the customer's next scan binds
them, and the unapplied claim stays visible for days):
  - a failure we see before anything was applied (WeChat's user info unavailable, a
    DynamoDB error) releases the claim and answers 5xx, so WeChat's retry applies it;
  - a handler that dies between the claim and the scan leaves a CLAIMED item: retries
    within its lease (longer than a Lambda may run, so the first handler is surely
    gone after it) are answered as duplicates, a push after it takes the claim over.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.customers import WeChatIdentity
from chalicelib.domain.official_account import VIA_SUBSCRIBE, OaEvent

# Longer than the API Lambda may run (Chalice's default timeout, 60 s), so a claim past
# its lease belongs to a handler that is gone.
LEASE_S = 90
# WeChat's retries come within seconds; a few days keeps what each event led to for people.
RETENTION_S = 3 * 86400

IGNORED = "IGNORED"               # not a scan of a parametric QR (a plain follow, another event)
DUPLICATE = "DUPLICATE"           # a retry of an event already applied or being applied
UNKNOWN_USER = "UNKNOWN_USER"     # WeChat does not know the openid (40003)
NO_UNIONID = "NO_UNIONID"         # the account is not bound to an Open Platform account: no bridge
SCENE_NOT_FOUND = "SCENE_NOT_FOUND"   # recorded as a scan all the same


@dataclass(frozen=True)
class OaEventHandled:
    outcome: str        # one of the above, or the scan's binding (FIRST_SCAN, VISIT_RECORDED, ...)
    customer_id: str | None = None
    scan_id: str | None = None
    channel: str | None = None


class NotLinkable(Exception):
    """This follower cannot be tied to a customer; ``reason`` is UNKNOWN_USER or NO_UNIONID."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def handle_event(event: OaEvent, *, oa_events, customers, official_account, scans, now: float,
                 policy) -> OaEventHandled:
    """Apply one verified, parsed push at most once; ``policy`` is the brand's ScanPolicy."""
    from chalicelib.services.scans import OA_SCAN, OA_SUBSCRIBE, SceneNotFound, scan

    qr = event.qr_scan()
    if qr is None:
        return OaEventHandled(IGNORED)
    channel = OA_SUBSCRIBE if qr.via == VIA_SUBSCRIBE else OA_SCAN
    token = oa_events.claim(event.dedup_key, event=event.event, scene=qr.scene, channel=channel, now=now,
                            lease_s=LEASE_S, retention_s=RETENTION_S)
    if token is None:
        return OaEventHandled(DUPLICATE, channel=channel)
    customer_id = scan_id = None
    try:
        customer_id = customer_for_follower(event.from_user, customers=customers,
                                            official_account=official_account, now=now)
        answer = scan(customer_id, qr.scene, None, None, scans=scans, now=now, policy=policy, channel=channel)
        outcome, scan_id = answer["binding"], answer["scan_id"]
    except NotLinkable as refused:
        outcome = refused.reason
    except SceneNotFound as unknown:
        outcome, scan_id = SCENE_NOT_FOUND, unknown.details.get("scan_id")
    except Exception:
        oa_events.release(event.dedup_key, token)   # nothing applied: WeChat's retry may apply it
        raise
    oa_events.mark_applied(event.dedup_key, token, outcome=outcome, customer_id=customer_id, scan_id=scan_id,
                           now=now)
    return OaEventHandled(outcome, customer_id, scan_id, channel)


def customer_for_follower(oa_openid: str, *, customers, official_account, now: float) -> str:
    """The customer behind an OA follower, created on first sight; raises NotLinkable."""
    from chalicelib.services.sessions import find_or_add_customer

    known = customers.find_by_identity(WeChatIdentity(openid=None, oa_openid=oa_openid))
    if known is not None:
        return known
    user = official_account.user_info(oa_openid)
    if user is None:
        raise NotLinkable(UNKNOWN_USER)
    if user.unionid is None:
        raise NotLinkable(NO_UNIONID)
    customer_id, _ = find_or_add_customer(WeChatIdentity(openid=None, unionid=user.unionid), customers=customers,
                                          now=now)
    customers.attach_identity(customer_id, "oa_openid", oa_openid, now)
    return customer_id
