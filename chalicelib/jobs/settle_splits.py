"""The settle-splits job (every five minutes): a thin entry point."""
from __future__ import annotations


def run() -> dict:
    from chalicelib.services import wiring
    from chalicelib.services.settlement import collaborators, settle_due_splits

    return settle_due_splits(collaborators(), wiring.now())
