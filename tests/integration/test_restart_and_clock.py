"""A stack stopped and started again forgets nothing; the business clock ages tokens."""
import pytest

from infra.local import demo_data
from infra.local.stack import StackError
from tests.integration.conftest import assert_contract_error, http, login, new_stack

pytestmark = pytest.mark.integration


def count_items(stack, short_name):
    import boto3

    client = boto3.client("dynamodb", endpoint_url=stack.urls["dynamodb"], region_name="cn-north-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    table = f"{stack.env['STORELINK_TABLE_PREFIX']}{short_name}"
    # A Scan, in a test only: counting everything is the point here.
    return client.scan(TableName=table, Select="COUNT")["Count"]


def me(api, token):
    return http("GET", f"{api}/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_a_restart_keeps_tokens_customers_and_demo_data_and_the_clock_ages_tokens(tmp_path):
    first = new_stack(tmp_path)
    first.start()
    try:
        session = login(first.urls["api"], "sandbox-alice").json()
        before = me(first.urls["api"], session["token"]).json()
        counts = {name: count_items(first, name) for name in ("stores", "dealers", "products", "stock")}
    finally:
        first.stop()
    assert counts["stores"] == 10 and counts["dealers"] == 3 and counts["products"] == 20

    second = new_stack(tmp_path)   # same data folder, new ports
    second.start()
    try:
        api = second.urls["api"]
        after = me(api, session["token"])
        assert after.status == 200
        assert after.json()["customer_id"] == session["customer_id"]
        assert after.json()["first_seen_at"] == before["first_seen_at"]
        assert {name: count_items(second, name) for name in counts} == counts

        moved = http("POST", f"{second.urls['sandbox']}/sandbox/clock", {"advance_s": 8 * 86400})
        assert moved.status == 200 and moved.json()["offset_s"] == 8 * 86400
        assert_contract_error(me(api, session["token"]), 401, "TOKEN_EXPIRED")
        again = login(api, "sandbox-alice").json()
        assert again["customer_id"] == session["customer_id"] and again["new_customer"] is False
        assert me(api, again["token"]).json()["first_seen_at"] == before["first_seen_at"]
    finally:
        second.stop()


def test_the_clock_refuses_to_go_backwards(stack):
    for body in ({"advance_s": -60}, {"advance_s": 0}, {"advance_s": "1d"}, {}):
        reply = http("POST", f"{stack.urls['sandbox']}/sandbox/clock", body)
        assert reply.status == 400 and reply.json()["error"]["code"] == "INVALID_CLOCK_MOVE"
    assert http("GET", f"{stack.urls['sandbox']}/sandbox/clock").json()["now"].endswith("+08:00")


def test_a_second_stack_on_the_same_files_is_refused(stack):
    with pytest.raises(StackError, match="already running"):
        new_stack(stack.data_dir).start()
    # ... and the first one is untouched.
    assert login(stack.urls["api"], "sandbox-alice").status == 200


def test_an_engine_orphaned_by_a_dead_stack_is_stopped_not_doubled(tmp_path):
    from infra.local import dynamodb
    from infra.local.processes import pid_alive
    from infra.local.stack import free_port

    first = new_stack(tmp_path)
    orphan = dynamodb.start(tmp_path, free_port(), first.env)   # as if its stack had been killed -9
    try:
        with pytest.raises(dynamodb.EngineAlreadyRunning):
            dynamodb.start(tmp_path, free_port(), first.env)
        first.start()
        try:
            assert not pid_alive(orphan.pid)
            assert login(first.urls["api"], "sandbox-alice").status == 200
        finally:
            first.stop()
    finally:
        if pid_alive(orphan.pid):
            dynamodb.stop(tmp_path, orphan)
    assert list(demo_data.STORES)
