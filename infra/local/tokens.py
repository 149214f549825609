"""Back-office tokens for the local stage, signed with the stack's own key."""
from __future__ import annotations

from pathlib import Path


def mint_backoffice_token(data_dir: Path, role: str, tenant: str) -> str:
    from chalicelib.auth import issue_backoffice_token
    from chalicelib.clock import CLOCK_FILE_NAME, BusinessClock
    from infra.local.keys import ensure_local_keys

    ensure_local_keys(data_dir)
    secret = (data_dir / "secrets" / "token_signing_key").read_text().strip()
    return issue_backoffice_token(role, tenant, BusinessClock(data_dir / CLOCK_FILE_NAME).timestamp(), secret)
