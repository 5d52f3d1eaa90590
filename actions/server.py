"""`python -m actions.server --port N`: rasa-sdk's action server, bound and guarded.

`rasa run actions` listens on every interface (rasa-sdk reads SANIC_HOST,
default 0.0.0.0) and runs any action for whoever reaches it: one POST to
/webhook from another machine makes an emergency escalation for any sender id.
This starts the same rasa-sdk application with three guards:

- It listens on AFTERCARE_ACTION_SERVER_HOST, 127.0.0.1 unless told otherwise.
- With AFTERCARE_ACTION_SERVER_TOKEN set, every request but /health must carry
  it as the query parameter `token` (Rasa adds it from endpoints.yml); anything
  else gets 401. Beyond loopback it refuses to start without a token.
- A request from a web browser (it has an Origin header) is refused, and
  /webhook takes only JSON: a page open in a browser on the clinic's computer
  cannot use the browser to call a server on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import hmac
import ipaddress
import logging
import sys
from typing import Optional

TOKEN_PARAMETER = "token"     # rasa's EndpointConfig default token_name
OPEN_PATHS = frozenset({"/health"})
ACTIONS_PACKAGE = "actions.actions"

logger = logging.getLogger("actions.server")


def is_loopback(host: str) -> bool:
    """True if host is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name or a wildcard such as 0.0.0.0 is not


def startup_problem(host: str, token: Optional[str]) -> Optional[str]:
    """Why the server must not start with host and token, or None."""
    if not is_loopback(host) and not token:
        return (f"the action server would listen on {host} without a token: set "
                f"AFTERCARE_ACTION_SERVER_TOKEN (the same value reaches Rasa through "
                f"endpoints.yml) or keep AFTERCARE_ACTION_SERVER_HOST=127.0.0.1")
    return None


def refusal(path: str, method: str, headers, args, content_type: str,
            token: Optional[str]) -> Optional[tuple[int, str]]:
    """(status, reason) to refuse a request with, or None to let it through."""
    if path in OPEN_PATHS and method in ("GET", "HEAD"):
        return None
    if headers.get("origin") is not None:
        return 403, "requests from web pages are not accepted"
    if token:
        given = args.get(TOKEN_PARAMETER) or ""
        if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
            return 401, "missing or wrong token"
    if path == "/webhook" and method == "POST" and content_type != "application/json":
        return 415, "the webhook takes application/json"
    return None


def build_app(token: Optional[str], actions_package: str = ACTIONS_PACKAGE):
    """rasa-sdk's Sanic application with the guards in front of every route."""
    from rasa_sdk.endpoint import create_app
    from rasa_sdk.plugin import plugin_manager
    from sanic import response

    # cors_origins None: no Access-Control-Allow-Origin, so no page can read a reply.
    app = create_app(actions_package, cors_origins=None)

    @app.middleware("request")
    async def guard(request):
        refused = refusal(request.path, request.method, request.headers, request.args,
                          request.content_type.split(";")[0].strip().lower(), token)
        if refused is None:
            return None
        status, reason = refused
        logger.warning("refused %s %s: %s", request.method, request.path, reason)
        return response.json({"error": reason}, status=status)

    # rasa-sdk's own handler logs the request and sends its body (the patient's
    # words) back to Rasa, which logs the reply: only the kind of error leaves here.
    @app.exception(Exception)
    async def failed(request, exception: Exception):
        logger.error("%s %s failed: %s", request.method, request.path, type(exception).__name__)
        return response.json({"error": type(exception).__name__}, status=500)

    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    return app


def main(argv: Optional[list[str]] = None) -> int:
    from rasa_sdk import utils
    from rasa_sdk.constants import DEFAULT_SERVER_PORT

    from aftercare.settings import SettingsError, get_settings

    parser = argparse.ArgumentParser(prog="python -m actions.server",
                                     description="the aftercare action server (rasa-sdk)")
    parser.add_argument("--port", type=int, default=DEFAULT_SERVER_PORT)
    parser.add_argument("--host", help="default: AFTERCARE_ACTION_SERVER_HOST (127.0.0.1)")
    parser.add_argument("--actions", default=ACTIONS_PACKAGE)
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"action server: {exc}", file=sys.stderr)
        return 2
    host = args.host or settings.action_server_host
    token = settings.action_server_token
    problem = startup_problem(host, token)
    if problem:
        print(f"action server: {problem}", file=sys.stderr)
        return 2
    utils.configure_colored_logging(None)
    utils.update_sanic_log_level()
    app = build_app(token, args.actions)
    logger.info("action server on %s:%s (token %s)", host, args.port,
                "required" if token else "not set: loopback only")
    app.run(host, args.port, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
