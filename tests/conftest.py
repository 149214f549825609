from __future__ import annotations

import pytest

from infra.local.environment import stage_variables
from tests.helpers import reset_process_caches


@pytest.fixture(scope="session")
def local_keys(tmp_path_factory):
    """Keys and secrets generated once (RSA generation is slow), copied per test."""
    from infra.local.keys import ensure_local_keys

    folder = tmp_path_factory.mktemp("keys")
    ensure_local_keys(folder)
    return folder


@pytest.fixture
def test_env(tmp_path, monkeypatch, local_keys):
    """The 'test' stage's settings, a private data folder with keys, fresh caches."""
    import shutil

    for name, value in stage_variables("test").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STORELINK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DYNAMODB_ENDPOINT", raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    shutil.copytree(local_keys, tmp_path, dirs_exist_ok=True)
    reset_process_caches()
    yield tmp_path
    reset_process_caches()


@pytest.fixture
def dynamodb(test_env):
    """Every table, on moto, for the length of one test."""
    from moto import mock_aws

    from chalicelib.db.schema import ensure_tables

    with mock_aws():
        ensure_tables()
        yield
