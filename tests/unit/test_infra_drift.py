"""The AWS template (infra/aws/resources.yaml) against the records and the contract,
without AWS: the template is read as data."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from chalicelib.db.records import ALL_RECORDS, OutboxRecord
from infra.aws.drift import load_template, table_drift, template_tables

ROOT = Path(__file__).resolve().parents[2]
AWS_STAGES = ("dev", "prod")


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


@pytest.fixture
def altered(template) -> dict:
    """A copy to break on purpose."""
    return copy.deepcopy(template)


def _tables(template: dict) -> dict[str, dict]:
    """Short name -> the table's resource."""
    return {short: template["Resources"][logical_id]
            for logical_id, short in template_tables(template).items()}


# --- drift ---------------------------------------------------------------------------

def test_the_template_describes_exactly_the_tables_the_records_define(template):
    assert table_drift(template) == []


def test_a_renamed_hash_key_is_reported(altered):
    brands = _tables(altered)["brands"]["Properties"]
    brands["KeySchema"][0]["AttributeName"] = "brand"
    brands["AttributeDefinitions"][0]["AttributeName"] = "brand"

    assert table_drift(altered) == [
        "brands: key: records have hash brand_id (S), the template has hash brand (S)"]


def test_a_changed_index_key_is_reported(altered):
    stores = _tables(altered)["stores"]["Properties"]
    by_brand = next(i for i in stores["GlobalSecondaryIndexes"] if i["IndexName"] == "by_brand")
    by_brand["KeySchema"][1]["AttributeName"] = "dealer_id"

    assert table_drift(altered) == [
        "stores: global index by_brand: records have hash brand_id (S), range store_id (S); "
        "projection ALL, the template has hash brand_id (S), range dealer_id (S); projection ALL"]


def test_an_index_missing_from_the_template_is_reported(altered):
    stock = _tables(altered)["stock"]["Properties"]
    del stock["GlobalSecondaryIndexes"]

    assert table_drift(altered) == [
        "stock: global index by_sku: records have hash sku (S), range location_id (S); "
        "projection ALL, the template has none"]


def test_a_dropped_table_is_reported(altered):
    del altered["Resources"]["CustomersTable"]

    assert table_drift(altered) == [
        "table customers: in the records (CustomerRecord), not in the template"]


def test_a_table_without_a_record_is_reported(template):
    records = tuple(r for r in ALL_RECORDS if r is not OutboxRecord)

    assert table_drift(template, records) == [
        "table outbox: in the template (OutboxTable), not in the records"]


def test_a_lost_stream_and_ttl_are_reported(altered):
    outbox = _tables(altered)["outbox"]["Properties"]
    del outbox["StreamSpecification"]
    outbox["TimeToLiveSpecification"]["Enabled"] = False

    assert table_drift(altered) == [
        "outbox: stream: records have NEW_IMAGE, the template has none",
        "outbox: TTL attribute: records have expires_at, the template has none"]


def test_an_attribute_definition_no_key_uses_is_reported(altered):
    # CloudFormation would refuse it, but only once the deploy is under way.
    customers = _tables(altered)["customers"]["Properties"]
    customers["AttributeDefinitions"].append({"AttributeName": "openid", "AttributeType": "S"})

    assert table_drift(altered) == [
        "customers: attribute openid is defined in the template but no key uses it"]


def test_a_table_name_without_the_stage_is_reported(altered):
    _tables(altered)["brands"]["Properties"]["TableName"] = "storelink-prod-brands"

    assert table_drift(altered) == [
        "BrandsTable: TableName is not !Sub storelink-${Stage}-<short name>",
        "table brands: in the records (BrandRecord), not in the template"]


def test_short_tags_load_as_their_long_forms(template):
    mapping = template["Resources"]["OutboxStreamMapping"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["OutboxTable", "StreamArn"]}
    assert mapping["FunctionName"] == {"Ref": "OutboxConsumer"}
    assert _tables(template)["outbox"]["Properties"]["TableName"] == {
        "Fn::Sub": "storelink-${Stage}-outbox"}


# --- what every table must have -------------------------------------------------------

def test_every_table_survives_deletes_and_mistakes(template):
    for short, table in _tables(template).items():
        properties = table["Properties"]
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain", short
        assert properties["DeletionProtectionEnabled"] is True, short
        assert properties["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True}, short
        assert properties["SSESpecification"]["SSEEnabled"] is True, short
        assert properties["BillingMode"] == "PAY_PER_REQUEST", short


def test_the_outbox_streams_new_items_and_expires_old_ones(template):
    outbox = _tables(template)["outbox"]["Properties"]
    assert outbox["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert outbox["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_outbox_stream_feeds_the_consumer_and_parks_failures(template):
    mapping = template["Resources"]["OutboxStreamMapping"]
    properties = mapping["Properties"]
    assert mapping["DependsOn"] == "OutboxConsumerPolicy"
    # From the start of the stream: the consumer skips items already consumed, so a
    # replaced mapping re-reads rather than skips.
    assert properties["StartingPosition"] == "TRIM_HORIZON"
    assert properties["BisectBatchOnFunctionError"] is True
    assert properties["MaximumRetryAttempts"] > 0
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["OutboxDeadLetterQueue", "Arn"]}


# --- access ---------------------------------------------------------------------------

def _statements(template: dict, policy: str) -> dict[str, dict]:
    document = template["Resources"][policy]["Properties"]["PolicyDocument"]
    return {statement["Sid"]: statement for statement in document["Statement"]}


def _scheduled_job_roles() -> set[str]:
    """The role chalice package makes for each @app.schedule ("settle-splits" -> SettleSplitsRole)."""
    import app as app_module
    from chalice.app import ScheduledEventConfig

    return {"".join(part.capitalize() for part in source.name.split("-")) + "Role"
            for source in app_module.app.event_sources if isinstance(source, ScheduledEventConfig)}


def test_every_lambda_may_use_every_table_and_query_its_indexes(template):
    statements = _statements(template, "TableAccessPolicy")
    logical_ids = template_tables(template)
    roles = {role["Ref"] for role in template["Resources"]["TableAccessPolicy"]["Properties"]["Roles"]}
    assert roles == {"ApiHandlerRole", "OutboxConsumerRole"} | _scheduled_job_roles()
    assert sorted(arn["Fn::GetAtt"][0] for arn in statements["Items"]["Resource"]) == \
        sorted(logical_ids)
    assert sorted(arn["Fn::Sub"] for arn in statements["IndexQueries"]["Resource"]) == \
        sorted(f"${{{logical_id}.Arn}}/index/*" for logical_id in logical_ids)
    assert statements["IndexQueries"]["Action"] == "dynamodb:Query"
    assert "dynamodb:Scan" not in statements["Items"]["Action"]  # the code never scans


def test_secrets_are_read_from_this_stages_parameters_only(template):
    secrets = _statements(template, "TableAccessPolicy")["StageSecrets"]
    assert secrets["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:"
                                              "${AWS::AccountId}:parameter/storelink/${Stage}/*"}


def test_only_the_consumer_reads_the_stream_and_writes_the_dead_letter_queue(template):
    policy = template["Resources"]["OutboxConsumerPolicy"]["Properties"]
    statements = _statements(template, "OutboxConsumerPolicy")
    assert policy["Roles"] == [{"Ref": "OutboxConsumerRole"}]
    assert statements["ReadOutboxStream"]["Resource"] == {"Fn::GetAtt": ["OutboxTable", "StreamArn"]}
    assert statements["ParkFailedBatches"]["Resource"] == {
        "Fn::GetAtt": ["OutboxDeadLetterQueue", "Arn"]}


def test_no_arn_names_a_partition(template):
    # cn-north-1 and cn-northwest-1 are in the aws-cn partition: ARNs say ${AWS::Partition}.
    assert "arn:aws" not in json.dumps(template)


def test_the_stages_table_prefixes_are_the_template_table_names(template):
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert template["Parameters"]["Stage"]["AllowedValues"] == list(AWS_STAGES)
    for stage in AWS_STAGES:
        prefix = config["stages"][stage]["environment_variables"]["STORELINK_TABLE_PREFIX"]
        assert prefix == f"storelink-{stage}-", stage


# --- API Gateway's own answers --------------------------------------------------------

def _gateway_body(template: dict, response_type: str, message: str, reason: str) -> dict:
    """The body API Gateway would send: it only substitutes the variables (no Velocity),
    and $context.error.messageString arrives already quoted."""
    response = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"][response_type]
    text = response["ResponseTemplates"]["application/json"]
    text = text.replace("$context.error.messageString", json.dumps(message))
    return json.loads(text.replace("$context.error.responseType", reason))


def test_an_unknown_path_answers_the_contracts_404(template):
    responses = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    assert _gateway_body(template, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token",
                         "MISSING_AUTHENTICATION_TOKEN") == {
        "error": {"code": "NOT_FOUND", "message": "No such resource.", "details": {}}}


@pytest.mark.parametrize("response_type, reason, message", [
    ("DEFAULT_4XX", "THROTTLED", "Too Many Requests"),
    ("DEFAULT_4XX", "REQUEST_TOO_LARGE", 'Request "too" large'),
    ("DEFAULT_5XX", "INTEGRATION_TIMEOUT", "Endpoint request timed out"),
])
def test_gateway_errors_answer_in_the_contracts_shape(template, response_type, reason, message):
    assert _gateway_body(template, response_type, message, reason) == {
        "error": {"code": reason, "message": message, "details": {}}}
