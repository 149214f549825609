"""Point every record at the current stage's tables, once per process."""
from __future__ import annotations

import functools

from chalicelib.config import settings


@functools.lru_cache(maxsize=1)
def bind_records() -> None:
    from chalicelib.db.records import ALL_RECORDS

    s = settings()
    for record in ALL_RECORDS:
        place = (s.table_name(record.short_name), s.region, s.dynamodb_endpoint)
        if place == (record.Meta.table_name, getattr(record.Meta, "region", None),
                     getattr(record.Meta, "host", None)):
            continue  # same tables: keep the connection (a new one costs a botocore client)
        record.Meta.table_name, record.Meta.region, record.Meta.host = place
        # PynamoDB retries throttles itself; keep a request's worst case short.
        record.Meta.connect_timeout_seconds = 2
        record.Meta.read_timeout_seconds = 5
        record._connection = None


def reset_binding() -> None:
    bind_records.cache_clear()


@functools.lru_cache(maxsize=4)
def _transaction_connection(region: str, host: str | None):
    from pynamodb.connection import Connection

    return Connection(region=region, host=host)


def transaction_connection():
    """The connection for TransactWrite/TransactGet, built once per process.

    It must use the records' region and host, or PynamoDB looks for "table None"
    (a known trap); a new one per transaction would cost a botocore client each time.
    """
    bind_records()
    s = settings()
    return _transaction_connection(s.region, s.dynamodb_endpoint)
