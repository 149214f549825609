"""One run of the settle-splits steps for one order, in its own process, against the
stack whose environment it inherits (driven by test_settlement_http.py).

    python -m tests.integration.settlement_worker <mode> <order_id>

``run`` walks the order's plan as the job would; ``crash-before-send`` and
``crash-after-send`` kill the process (``os._exit``, no clean-up, like a Lambda timing
out) right before WeChat Pay is asked to split, or right after it carried the split out
and before anything is recorded. Exit code 97 means the crash happened.
"""
import os
import sys

from chalicelib.services import settlement, wiring

CRASHED = 97


class CrashingProvider:
    def __init__(self, provider, mode: str):
        self._provider, self._mode = provider, mode

    def __getattr__(self, name):
        return getattr(self._provider, name)

    def request_split(self, *args, **kwargs):
        if self._mode == "crash-before-send":
            os._exit(CRASHED)
        result = self._provider.request_split(*args, **kwargs)
        if self._mode == "crash-after-send":
            os._exit(CRASHED)
        return result


def main() -> int:
    mode, order_id = sys.argv[1], sys.argv[2]
    collaborators = settlement.collaborators()
    if mode != "run":
        collaborators.provider = CrashingProvider(collaborators.provider, mode)
    steps = settlement.settle_order(order_id, collaborators, wiring.now())
    print(steps, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
