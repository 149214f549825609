"""What every repository does with PynamoDB: get, create-if-absent, conditional
update, and paged queries; failed conditions become domain errors here."""
from __future__ import annotations

from chalicelib.db.binding import bind_records
from chalicelib.errors import Conflict


def is_condition_failure(exc: Exception) -> bool:
    if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
        return True
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)


def get(record_cls, hash_key, range_key=None):
    bind_records()
    try:
        return record_cls.get(hash_key, range_key, consistent_read=True)
    except record_cls.DoesNotExist:
        return None


def create(record, conflict: Exception | None = None) -> None:
    """Put the item only if no item has its key (else ``conflict``, a 409 by default)."""
    from pynamodb.exceptions import PutError

    bind_records()
    cls = type(record)
    try:
        record.save(condition=getattr(cls, cls._hash_keyname).does_not_exist())
    except PutError as exc:
        if is_condition_failure(exc):
            raise (conflict or Conflict("It already exists.")) from exc
        raise


def update(record_cls, key: tuple, actions: list, condition, on_condition_failure: Exception):
    """One conditional UpdateItem; returns the updated record."""
    from pynamodb.exceptions import UpdateError

    bind_records()
    record = record_cls(*key) if len(key) == 2 else record_cls(key[0])
    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if is_condition_failure(exc):
            raise on_condition_failure from exc
        raise
    return record


def query_page(index_or_model, hash_key, limit: int, start_key: dict | None, newest_first: bool = False):
    """One page: (records, the key to continue after, or None); ``newest_first`` reads
    the range key descending."""
    bind_records()
    results = index_or_model.query(hash_key, limit=limit, last_evaluated_key=start_key or None,
                                   consistent_read=False, scan_index_forward=not newest_first)
    records = list(results)
    return records, results.last_evaluated_key


def batch_get(wanted: dict) -> dict:
    """{Record: [raw keys]} -> {Record: [records]} in one BatchGetItem across tables
    (PynamoDB's own batch_get reads one table per call), retrying unprocessed keys."""
    import time

    from chalicelib.db.binding import transaction_connection

    bind_records()
    client = transaction_connection().client
    by_table = {cls.Meta.table_name: cls for cls in wanted}
    request = {cls.Meta.table_name: {"Keys": keys, "ConsistentRead": True} for cls, keys in wanted.items() if keys}
    found: dict = {}
    for attempt in range(8):
        response = client.batch_get_item(RequestItems=request)
        for table, rows in response.get("Responses", {}).items():
            found.setdefault(by_table[table], []).extend(by_table[table].from_raw_data(r) for r in rows)
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(0.02 * 2 ** attempt)  # throttled: back off, then ask for the rest
    raise TimeoutError("DynamoDB kept keys unprocessed")


BATCH_WRITE_MAX = 25   # DynamoDB's limit of items per BatchWriteItem


def batch_write(records: list) -> None:
    """Put many records, 25 per BatchWriteItem (any tables), retrying unprocessed items.

    Our own rather than PynamoDB's ``Model.batch_write()``: that one resends unprocessed
    items at once, without backing off (a TODO in PynamoDB 6.1), which under throttling
    only spends its attempts faster. BatchWriteItem puts are unconditional: an item
    with an existing key replaces it, so callers must make keys that cannot collide."""
    import time

    from chalicelib.db.binding import transaction_connection

    bind_records()
    client = transaction_connection().client
    for first in range(0, len(records), BATCH_WRITE_MAX):
        request: dict = {}
        for record in records[first:first + BATCH_WRITE_MAX]:
            request.setdefault(type(record).Meta.table_name, []).append({"PutRequest": {"Item": record.serialize()}})
        for attempt in range(8):
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not request:
                break
            time.sleep(0.02 * 2 ** attempt)  # throttled: back off, then send the rest
        else:
            raise TimeoutError("DynamoDB kept items unprocessed")
