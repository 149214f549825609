"""Back-office use cases for unit codes (一物一码): make a batch of codes for a SKU,
read a batch, list its codes and a SKU's batches, report one unit's scans.

Brand only: the codes go on the brand's packaging, so dealer and store tokens get 403
for every one of these; another brand's batch, SKU or code is 404.

How a batch is written. The batch record goes first, CREATING; then its ``count``
unit scenes, 25 per BatchWriteItem; then the batch turns COMPLETE and only then is it
answered. A request that dies part-way leaves a batch that says CREATING next to the
codes it did write: visibly unfinished, never silently short. Its codes are valid
scenes no one has printed; the brand makes another batch.

Why unconditional writes cannot overwrite a code. BatchWriteItem has no condition,
so a token drawn twice would replace the older unit (and its scan history). A unit
token has 14 base62 characters, 62**14 ≈ 1.2e25 ≈ 2**83 values; after a billion
codes (2**30) the chance that any two ever met is about (2**30)**2 / 2 / 2**83 ≈
6e-8, and other kinds cannot meet them (other letters, 10 characters). Conditional
puts would cost a round trip per code (1000 for a full batch) or twice the write
capacity in 100-item transactions, to guard against that. Repeats inside one batch
are drawn again before writing (DynamoDB refuses a key twice in one request anyway).
"""
from __future__ import annotations

from chalicelib.domain import tenancy
from chalicelib.domain.tenancy import BRAND
from chalicelib.domain.unit_codes import (
    COMPLETE,
    UnitCode,
    UnitCodeBatch,
    check_batch_size,
    new_batch_id,
    new_unit_tokens,
)
from chalicelib.errors import Conflict, NotFound

PAGE = 100


class BatchIncomplete(Conflict):
    code = "UNIT_CODE_BATCH_INCOMPLETE"
    default_message = "This batch is still being written, or its writing stopped part-way: make another batch."


def _brand_only(principal, action: str) -> None:
    tenancy.require_role(principal, BRAND, action=action)


def _product(principal, sku: str, catalogue):
    product = catalogue.get_product(sku)
    return tenancy.visible(product, product is not None and product.brand_id == principal.tenant_id, "product", sku)


def create_batch(principal, sku: str, count: int, *, unit_codes, catalogue, now: float) -> UnitCodeBatch:
    _brand_only(principal, "make unit codes")
    count = check_batch_size(count)
    product = _product(principal, sku, catalogue)
    batch = UnitCodeBatch(batch_id=new_batch_id(), sku=product.sku, brand_id=product.brand_id, count=count,
                          created_at=now, created_by=f"{principal.role}:{principal.tenant_id}")
    unit_codes.start_batch(batch)
    unit_codes.add_codes([UnitCode(scene=token, brand_id=batch.brand_id, sku=batch.sku, batch_id=batch.batch_id,
                                   created_at=now) for token in new_unit_tokens(count)])
    return unit_codes.complete_batch(batch.batch_id, now)


def read_batch(principal, batch_id: str, *, unit_codes) -> UnitCodeBatch:
    _brand_only(principal, "read unit codes")
    batch = unit_codes.get_batch(batch_id)
    if batch is None or batch.brand_id != principal.tenant_id:
        raise NotFound(f"No unit code batch {batch_id}.", batch_id=batch_id)
    return batch


def list_codes(principal, batch_id: str, limit: int, start, *, unit_codes):
    read_batch(principal, batch_id, unit_codes=unit_codes)
    return unit_codes.codes_of_batch(batch_id, limit, start)


def all_codes(principal, batch_id: str, *, unit_codes) -> list[UnitCode]:
    """Every code of a COMPLETE batch (for the printer: at most 1000, 10 queries), or
    BatchIncomplete rather than fewer than ``count``: the ``by_batch`` index is
    eventually consistent, so just after a batch completes it can lag its last writes."""
    batch = read_batch(principal, batch_id, unit_codes=unit_codes)
    if batch.status != COMPLETE:
        raise BatchIncomplete(batch_id=batch_id, status=batch.status)
    codes: list[UnitCode] = []
    start = None
    while True:
        page, start = unit_codes.codes_of_batch(batch_id, PAGE, start)
        codes += page
        if not start:
            break
    if len(codes) != batch.count:
        raise BatchIncomplete("Not every code of this batch is listed yet: try again in a moment.",
                              batch_id=batch_id, status=batch.status, listed=len(codes), count=batch.count)
    return codes


def list_batches(principal, sku: str, limit: int, start, *, unit_codes, catalogue):
    _brand_only(principal, "read unit codes")
    _product(principal, sku, catalogue)
    return unit_codes.batches_of_sku(sku, limit, start)


def read_unit(principal, scene: str, *, unit_codes) -> UnitCode:
    _brand_only(principal, "read unit codes")
    code = unit_codes.get_code(scene)
    if code is None or code.brand_id != principal.tenant_id:
        raise NotFound(f"No unit code {scene}.", scene=scene)
    return code
