"""Start Rasa (`python -m aftercare.rasa_server run ...`) with one speed fix.

Rasa 3.6 checks every custom action's response with jsonschema.validate(),
which re-validates the schema itself against the draft 2020-12 metaschema on
each call. Profiled with py-spy, that took two thirds of the server's time per
message (each message runs two custom actions). Here the same schema is checked
once and the compiled validator reused: the same validation, done once.

It also guards Rasa's HTTP API. With AFTERCARE_RASA_TOKEN set, Rasa runs
with `--auth-token` and every request but `/` must carry the token as the
query parameter `token`, the REST channel's webhook included (Rasa's own
check covers only its API routes, and whoever can post to the webhook can
write in any patient's conversation). Rasa refuses to listen beyond
loopback (`--interface`) without a token.

The variables endpoints.yml reads are filled in from the settings when they
are not set (aftercare/services.py sets them when it starts Rasa), so a Rasa
server started on its own (deploy/compose.yaml) needs only the settings.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import sys
from functools import lru_cache
from typing import Any, Optional

TOKEN_VARIABLE = "AFTERCARE_RASA_TOKEN"
TOKEN_PARAMETER = "token"      # what Rasa's own --auth-token check reads
OPEN_PATHS = frozenset({"/"})  # "Hello from Rasa": the health check needs nothing else


@lru_cache(maxsize=1)
def _response_validator():
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate_action_result(self, result: dict[str, Any]) -> bool:
    from jsonschema import ValidationError
    from rasa.shared.constants import DOCS_BASE_URL

    try:
        _response_validator().validate(result)
        return True
    except ValidationError as error:
        error.message += (
            ". Failed to validate Action server response from API, make sure your response "
            f"from the Action endpoint is valid. For more information see {DOCS_BASE_URL}"
            "/custom-actions")
        raise


def install() -> None:
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = _validate_action_result


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False   # a name, or a wildcard such as 0.0.0.0


def interface_of(argv: list[str]) -> str:
    """The --interface of a `rasa run` command line (Rasa's default: every one)."""
    for index, argument in enumerate(argv):
        if argument == "--interface" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--interface="):
            return argument.split("=", 1)[1]
    return "0.0.0.0"


def startup_problem(interface: str, token: Optional[str]) -> Optional[str]:
    if not is_loopback(interface) and not token:
        return (f"Rasa would listen on {interface} without a token: set {TOKEN_VARIABLE} "
                f"(20 characters or more; the bot sends it) or keep AFTERCARE_RASA_HOST=127.0.0.1")
    if token is not None and (len(token) < 20 or any(c.isspace() for c in token)):
        return f"{TOKEN_VARIABLE} must be at least 20 characters without spaces"
    return None


def refusal(path: str, args, token: Optional[str]) -> Optional[str]:
    """Why a request must be refused (401), or None."""
    if token is None or path in OPEN_PATHS:
        return None
    given = args.get(TOKEN_PARAMETER) or ""
    if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        return "missing or wrong token"
    return None


def _guard_every_route(token: str) -> None:
    """Put the token check in front of every route of the app Rasa builds."""
    import rasa.core.run as rasa_run
    from sanic import response

    configure_app = rasa_run.configure_app

    def configure_guarded_app(*args: Any, **kwargs: Any):
        app = configure_app(*args, **kwargs)

        @app.middleware("request")
        async def guard(request):
            reason = refusal(request.path, request.args, token)
            if reason is None:
                return None
            return response.json({"error": reason}, status=401)
        return app

    rasa_run.configure_app = configure_guarded_app


def _fill_environment() -> None:
    """endpoints.yml's variables from the settings, unless already set."""
    from aftercare.services import scale_env, service_env
    from aftercare.settings import SettingsError, get_settings

    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"rasa server: {exc}", file=sys.stderr)
        sys.exit(2)
    for name, value in {**service_env(settings), **scale_env(settings)}.items():
        os.environ.setdefault(name, value)


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    if sys.argv[1:2] == ["run"]:
        _fill_environment()
        token = os.environ.get(TOKEN_VARIABLE) or None
        problem = startup_problem(interface_of(sys.argv), token)
        if problem:
            print(f"rasa server: {problem}", file=sys.stderr)
            sys.exit(2)
        if token:
            _guard_every_route(token)
            # Added here, not on the command line others can read with ps.
            sys.argv += ["--auth-token", token]
    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
