"""`chalice package --stage prod --merge-template infra/aws/resources.yaml`, through
infra/aws/package.py, then cfn-lint for the China regions and us-east-1.

No AWS account: packaging only writes files (it fetches the Lambda platform's wheels
of requirements.txt from PyPI), and cfn-lint reads them.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from infra.aws.drift import load_template, table_drift
from infra.aws.package import package

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ("cn-north-1", "cn-northwest-1", "us-east-1")
# The venv's cfn-lint (it has no `python -m cfnlint`).
CFN_LINT = [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())"]


def _copy_of_the_project(into: Path) -> Path:
    """What `chalice package` reads: app.py, requirements.txt, chalicelib/, vendor/ and
    .chalice/ (config and policy files). A copy, because chalice package leaves a ~25 MB
    zip in the project's .chalice/deployments/ for every new version of the code."""
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(ROOT / name, into / name)
    leave_out = shutil.ignore_patterns("__pycache__", "deployments", "venv")
    for name in ("chalicelib", "vendor", ".chalice"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, into / name, ignore=leave_out)
    return into


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Path:
    """sam.yaml for stage prod, packaged once for the module (see --durations for its time)."""
    project = _copy_of_the_project(tmp_path_factory.mktemp("project"))
    with pytest.MonkeyPatch.context() as env:
        # Packaging calls no AWS API: fake credentials make sure it could not.
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "cn-north-1")
        env.delenv("AWS_PROFILE", raising=False)
        return package("prod", tmp_path_factory.mktemp("out"), project_dir=project)


@pytest.fixture(scope="module")
def template(packaged) -> dict:
    return yaml.safe_load(packaged.read_text())


def test_the_packaged_template_passes_cfn_lint_in_the_china_regions_and_us_east_1(packaged):
    # Exit code 0 means no error and no warning: no check is ignored.
    result = subprocess.run([*CFN_LINT, "--regions", *REGIONS, "--", str(packaged)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_outbox_stream_is_mapped_to_the_consumer_function(template):
    resources = template["Resources"]
    mapping = resources["OutboxStreamMapping"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    assert mapping["Properties"]["FunctionName"] == {"Ref": "OutboxConsumer"}
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["OutboxTable", "StreamArn"]}
    consumer = resources["OutboxConsumer"]
    assert consumer["Type"] == "AWS::Serverless::Function"
    assert consumer["Properties"]["Handler"] == "app.outbox_consumer"


def test_an_unknown_path_answers_404_from_chalices_api(template):
    api = template["Resources"]["RestAPI"]
    assert api["Type"] == "AWS::Serverless::Api"
    assert "/v1/sessions" in api["Properties"]["DefinitionBody"]["paths"]  # Chalice's part kept
    not_found = api["Properties"]["GatewayResponses"]["MISSING_AUTHENTICATION_TOKEN"]
    assert not_found["StatusCode"] == "404"
    assert '"code": "NOT_FOUND"' in not_found["ResponseTemplates"]["application/json"]


def test_the_policies_are_attached_to_roles_chalice_creates(template):
    resources = template["Resources"]
    for policy in ("TableAccessPolicy", "OutboxConsumerPolicy"):
        for role in resources[policy]["Properties"]["Roles"]:
            assert resources.get(role["Ref"], {}).get("Type") == "AWS::IAM::Role", (
                f"{policy} names {role['Ref']}, which chalice package no longer creates "
                "(with autogen_policy true its only role is DefaultRole)")
    assert resources["APIHandler"]["Properties"]["Role"] == {"Fn::GetAtt": ["ApiHandlerRole", "Arn"]}
    assert resources["OutboxConsumer"]["Properties"]["Role"] == {
        "Fn::GetAtt": ["OutboxConsumerRole", "Arn"]}


def test_the_merge_keeps_every_resource_of_the_template_as_written(template):
    # Chalice reads the YAML with a loader of its own: it must see what infra.aws.drift sees.
    ours = load_template()
    for logical_id, resource in ours["Resources"].items():
        if logical_id == "RestAPI":  # merged into Chalice's API
            assert template["Resources"][logical_id]["Properties"]["GatewayResponses"] == \
                resource["Properties"]["GatewayResponses"]
        else:
            assert template["Resources"][logical_id] == resource, logical_id
    assert table_drift(template) == []


def test_the_stage_parameter_is_pinned_to_the_packaged_stage(template):
    assert template["Parameters"]["Stage"]["Default"] == "prod"
    assert template["Parameters"]["Stage"]["AllowedValues"] == ["prod"]
    assert template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"][
        "STORELINK_TABLE_PREFIX"] == "storelink-prod-"


def test_no_arn_names_a_partition(packaged):
    assert "arn:aws:" not in packaged.read_text()


def test_the_api_endpoint_exists_in_the_china_regions(template):
    # Edge-optimized APIs (Chalice's default) do not exist in cn-north-1 / cn-northwest-1.
    endpoint = template["Resources"]["RestAPI"]["Properties"]["EndpointConfiguration"]
    assert endpoint in ("REGIONAL", {"Type": "REGIONAL"}), (
        f"the API is {endpoint}: set \"api_gateway_endpoint_type\": \"REGIONAL\" in .chalice/config.json")


def test_the_deployment_zip_holds_the_app_and_its_libraries(packaged):
    names = set(zipfile.ZipFile(packaged.with_name("deployment.zip")).namelist())
    assert {"app.py", "chalicelib/jobs/outbox.py", "pynamodb/models.py"} <= names
