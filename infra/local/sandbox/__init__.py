"""A local stand-in for WeChat's servers that speaks their real wire protocols.

    http.py          router and server on the standard library (exact bytes and headers)
    state.py         the sandbox's memory in SQLite (everything WeChat would remember)
    controls.py      /sandbox/health and the business clock; due_work_hooks run after a move
    due.py           the sandbox's own due work: after each move and every second
                     (expiry, refund results, settlement 10 days after shipping, split results,
                     day-30 unfreezes, deliveries)
    miniprogram.py   code2Session, stable access token (check_access_token), mini-program codes
    shipping.py      shipping information: upload_shipping_info, get_order, notify_confirm_receive
    official_account.py  the official account: user info (its own access token); /sandbox/oa/push
                     signs and pushes event XML to the API's OA server URL
    signing.py       WeChat Pay v3 request verification, response/notification signing, AES-GCM
    v3.py            the /v3 front door: authenticate, answer errors as WeChat, sign every reply
    pay.py           partner JSAPI prepay, query, close; /sandbox/pay, confirm-receipt;
                     shipped -> received -> settled (settle_due, is_settled)
    refunds.py       domestic refunds; /sandbox/refunds/{no}/finish
    profitsharing.py partner profit sharing: receivers, split orders (results 10-30 s later),
                     unfreeze (and the day-30 automatic one), unsplit amount, max ratio;
                     /sandbox/profitsharing (a transaction's splits), .../receivers
    notify.py        notifications: delivery, WeChat's retry schedule on the business clock
    fees.py          the provider's 0.6 % fee and its proportional refund (integer fen)
    merchants.py     per-merchant settings and balances: /sandbox/merchants/{mchid}
    requests_log.py  requests per idempotency key: /sandbox/requests
    faults.py        injected faults and bill discrepancies: /sandbox/faults
    bills.py         bills of a Beijing day: /v3/bill/tradebill, /v3/profitsharing/bills (apply:
                     SHA1 + a download URL living 30 wall seconds), /v3/billdownload/file (the
                     raw file, gzip or text, unsigned); from 10:00 Beijing on D+1 (business clock),
                     3 months back; statuses as of 09:00 D+1; the bill faults of faults.py
    bill_files.py    the bill files' exact format (pure writers: rows in, lines out)
    fields.py        field checks shared by the WeChat Pay APIs
"""
