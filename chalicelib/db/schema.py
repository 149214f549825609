"""Create the tables the records describe (local stage and tests only).

In AWS the tables come from the CloudFormation template in ``infra/aws``.
An index added to a record after the local tables were made is added to them
here too, so an old ``.local/`` keeps working.
"""
from __future__ import annotations

from chalicelib.db.binding import bind_records


def ensure_tables(wait: bool = True) -> list[str]:
    """Create every missing table and index; returns what it created."""
    from chalicelib.db.records import ALL_RECORDS

    bind_records()
    created = []
    for record in ALL_RECORDS:
        if not record.exists():
            record.create_table(wait=wait)
            created.append(record.Meta.table_name)
        else:
            created += [f"{record.Meta.table_name}.{name}" for name in _add_missing_indexes(record)]
    return created


def _add_missing_indexes(record) -> list[str]:
    connection = record._get_connection().connection
    table = record.Meta.table_name
    described = connection.describe_table(table)
    existing = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
    schema = record._get_schema()
    added = []
    for index in schema.get("global_secondary_indexes", []):
        if index["index_name"] in existing:
            continue
        keys = {k["AttributeName"] for k in index["key_schema"]}
        attributes = [a for a in schema["attribute_definitions"] if a["AttributeName"] in keys]
        connection.client.update_table(
            TableName=table, AttributeDefinitions=attributes,
            GlobalSecondaryIndexUpdates=[{"Create": {
                "IndexName": index["index_name"], "KeySchema": index["key_schema"],
                "Projection": index["projection"]}}])
        added.append(index["index_name"])
        # DynamoDB builds one new index of a table at a time.
        _wait_for_indexes(connection, table)
    return added


def _wait_for_indexes(connection, table: str, timeout_s: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        indexes = connection.describe_table(table).get("GlobalSecondaryIndexes", [])
        if all(index.get("IndexStatus", "ACTIVE") == "ACTIVE" for index in indexes):
            return
        time.sleep(0.2)
    raise TimeoutError(f"indexes of {table} did not become active within {timeout_s:.0f}s")
