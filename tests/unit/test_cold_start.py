"""What `import app` pulls in (the timed comparison lives in bench/import_time.py)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_app_loads_no_sdk_or_http_client():
    code = ("import sys, app; heavy = sorted(m for m in ('boto3', 'botocore', 'pynamodb', 'requests', "
            "'jwt', 'cryptography', 'h3', 'segno') if m in sys.modules); print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
