"""./storelink demo narrates one order's whole life and ends consistent."""
import subprocess

import pytest

from infra.local.environment import PROJECT_DIR

pytestmark = pytest.mark.integration


def test_the_demo_runs_to_a_consistent_end(stack):
    result = subprocess.run([str(PROJECT_DIR / "storelink"), "--data-dir", str(stack.data_dir), "demo"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "order     COMPLETED" in result.stdout
    assert "provider  trade_state REFUND, settled True, refunded 9900 fen" in result.stdout
    assert "The order reached its end: COMPLETED, 9900 fen refunded" in result.stdout
