"""Secrets: files in the local stage, SSM Parameter Store in AWS."""
import pytest


def test_an_aws_stage_reads_its_secrets_from_ssm(test_env, monkeypatch):
    import boto3
    from moto import mock_aws

    from chalicelib.secrets import TOKEN_SIGNING_KEY, get_secret
    from tests.helpers import reset_process_caches

    monkeypatch.setenv("STORELINK_STAGE", "prod")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "cn-north-1")
    reset_process_caches()
    with mock_aws():
        boto3.client("ssm", region_name="cn-north-1").put_parameter(
            Name="/storelink/prod/token_signing_key", Value="from-ssm", Type="SecureString")
        assert get_secret(TOKEN_SIGNING_KEY) == "from-ssm"


def test_a_missing_local_secret_says_how_to_make_it(test_env):
    from chalicelib.config import ConfigurationError
    from chalicelib.secrets import get_secret

    with pytest.raises(ConfigurationError, match="start the stack once"):
        get_secret("no_such_secret")
