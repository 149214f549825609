"""Local tables follow the records, even tables made before an index existed."""


def test_an_index_added_to_a_record_is_added_to_an_existing_table(dynamodb):
    from chalicelib.db.records import StoreRecord
    from chalicelib.db.schema import ensure_tables

    connection = StoreRecord._get_connection().connection
    table = StoreRecord.Meta.table_name
    connection.client.update_table(TableName=table, GlobalSecondaryIndexUpdates=[
        {"Delete": {"IndexName": "by_brand"}}])
    before = {i["IndexName"] for i in connection.describe_table(table)["GlobalSecondaryIndexes"]}
    assert "by_brand" not in before

    assert ensure_tables() == [f"{table}.by_brand"]
    after = {i["IndexName"] for i in connection.describe_table(table)["GlobalSecondaryIndexes"]}
    assert after == before | {"by_brand"}
    assert ensure_tables() == []


def test_the_outbox_has_a_stream_and_a_ttl(dynamodb):
    from chalicelib.db.records import OutboxRecord

    connection = OutboxRecord._get_connection().connection
    described = connection.describe_table(OutboxRecord.Meta.table_name)
    assert described["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    ttl = connection.client.describe_time_to_live(TableName=OutboxRecord.Meta.table_name)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_the_outbox_consumer_hands_each_new_item_to_its_kind(monkeypatch):
    from chalicelib.jobs import outbox

    seen = []
    monkeypatch.setitem(outbox.HANDLERS, "PAYMENT_CAPTURED", lambda oid, payload: seen.append((oid, payload)))
    event = {"Records": [
        {"eventName": "INSERT", "dynamodb": {"NewImage": {
            "outbox_id": {"S": "ob_1"}, "kind": {"S": "PAYMENT_CAPTURED"}, "payload": {"S": '{"order_id": "o1"}'}}}},
        {"eventName": "REMOVE", "dynamodb": {}},
        {"eventName": "INSERT", "dynamodb": {"NewImage": {"outbox_id": {"S": "ob_2"}, "kind": {"S": "MYSTERY"}}}},
    ]}
    from tests.helpers import FakeOutboxMarks

    marks = FakeOutboxMarks()
    assert outbox.consume(event, outbox=marks, now=lambda: 1.0) == {"handled": 1, "skipped": 2}
    assert outbox.consume(event, outbox=marks, now=lambda: 2.0) == {"handled": 0, "skipped": 3}
    assert seen == [("ob_1", {"order_id": "o1"})]


def test_an_outbox_item_is_marked_consumed_once(dynamodb):
    from pynamodb.transactions import TransactWrite

    from chalicelib.db.binding import transaction_connection
    from chalicelib.db.outbox import OutboxRepository, new_outbox_item

    item = new_outbox_item("PAYMENT_CAPTURED", {"order_id": "o1"}, 100.0)
    with TransactWrite(connection=transaction_connection()) as tx:
        tx.save(item)
    repo = OutboxRepository()
    assert repo.is_consumed(item.outbox_id) is False
    assert repo.mark_consumed(item.outbox_id, 101.0) is True
    assert repo.mark_consumed(item.outbox_id, 102.0) is False
    assert repo.is_consumed(item.outbox_id) is True
