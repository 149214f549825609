"""The API on Chalice's local server, stage ``local``, without the reloader.

Why a wrapper and not plain ``chalice local --no-autoreload``: Chalice's local
gateway answers an unknown route with API Gateway's 403 "Missing Authentication
Token" before our code runs; the contract wants its own 404 body there (in AWS,
``GatewayResponses`` in ``infra/aws`` do the same). It also keeps the environment
the stack set (ports, data folder) instead of letting config.json overwrite it.

    python -m infra.local.api_server --port 8000
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from infra.local.environment import PROJECT_DIR, stage_variables


def _contract_error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()


def build_server(host: str, port: int):
    from chalice.cli.factory import CLIFactory
    from chalice.local import ChaliceRequestHandler, LocalDevServer, LocalGatewayException, ThreadedHTTPServer

    class BusyServer(ThreadedHTTPServer):
        # The standard library's backlog of 5 resets connections when WeChat (or a
        # test playing WeChat) delivers many notifications at once.
        request_queue_size = 256
        daemon_threads = True

    class ContractRequestHandler(ChaliceRequestHandler):
        def _send_error_response(self, error: LocalGatewayException) -> None:
            if error.CODE == 403:
                # Chalice's gateway: no route matches this path (API Gateway's 403).
                body = _contract_error(404, "NOT_FOUND", f"No such resource: {self.command} {self.path.split('?')[0]}")
                self._send_http_response(404, {"Content-Type": "application/json"}, body)
            else:
                body = _contract_error(error.CODE, "UNAUTHENTICATED" if error.CODE == 401 else "INTERNAL_ERROR",
                                       "The gateway refused the request.")
                self._send_http_response(error.CODE, {"Content-Type": "application/json"}, body)

        def _parse_payload(self):
            try:
                return super()._parse_payload()
            except ValueError:
                return dict(self.headers), None

        def send_error(self, code, message=None, explain=None):
            # http.server's own HTML errors (unknown method, malformed request line)
            body = _contract_error(code, "BAD_REQUEST" if code < 500 else "NOT_IMPLEMENTED",
                                   message or "The request could not be read.")
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, format, *args):  # noqa: A002 - the app logs requests as JSON
            pass

    for name, value in stage_variables("local").items():
        os.environ.setdefault(name, value)
    # The factory updates the environ it is given with config.json's variables:
    # hand it a throwaway dict so the stack's own settings stay in force.
    factory = CLIFactory(str(PROJECT_DIR), environ={})
    config = factory.create_config_obj(chalice_stage_name="local")
    app = config.chalice_app
    return LocalDevServer(app, config, host, port, handler_cls=ContractRequestHandler, server_cls=BusyServer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    os.chdir(PROJECT_DIR)
    server = build_server(args.host, args.port)
    print(f"API listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
