"""The review web application: routes, middlewares, security headers, templates.

build_app() wires it together; the handlers are in views.py. Middlewares, from
the outside in: our own access log (method, route pattern, ids, status, staff
id; never a query string, a name or a form field), error pages (an aiohttp
404/405/413 or an unexpected exception becomes a readable page), and the
session check (every page but /login, /health and /static needs one).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple, TypeVar, Union
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from aftercare.settings import Settings
from aftercare.store.db import session_scope
from review import auth, filters

logger = logging.getLogger("review")
access_logger = logging.getLogger("review.access")

Clock = Callable[[], datetime]
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
MAX_BODY_BYTES = 512 * 1024   # a 16,000-character reply, percent-encoded, fits with room
PUBLIC_ROUTES = frozenset({"health", "login", "login_post", "static"})
# Pages for any signed-in account; the authoring pages (routes named
# authoring*) are for content authors; every other page shows patients and is
# for nurses (aftercare/staff.py roles).
ANY_ROLE_ROUTES = frozenset({"logout"})
ROLE_REFUSED = {
    "author": ("These pages are for the clinic's content authors, and your account is not "
               "one. Whoever runs the clinic's system can add the role: aftercare staff roles "
               "EMAIL --role nurse,author."),
    "nurse": ("This page shows patients' names and conversations, which only nurses' "
              "accounts can see. Your account is for content authors: the inbox of messages "
              "to label is on the Inbox page."),
}
LOGGED_IDS = ("id", "action")  # path parts that are safe to log (numbers, action names)

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", object)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
LIMITER = web.AppKey("limiter", auth.LoginLimiter)
CLINIC_TZ = web.AppKey("clinic_tz", ZoneInfo)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple)

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

SECURITY_HEADERS = {
    # No script at all: the pages are plain HTML forms.
    "Content-Security-Policy": ("default-src 'self'; script-src 'none'; style-src 'self'; "
                                "img-src 'self'; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

ERROR_MESSAGES = {
    400: ("Bad request", "The form could not be read. Go back, reload the page and try again."),
    403: ("Not allowed", "That is not allowed."),
    404: ("Not found", "There is no such page here."),
    405: ("Not allowed", "That page cannot be used that way."),
    413: ("Too large", "What was sent is too large for this page."),
}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def now(request: web.Request) -> datetime:
    """The app's clock (a test moves it), always aware UTC."""
    moment = request.app[CLOCK]()
    return moment.astimezone(timezone.utc)


async def in_db(request: web.Request, work: Callable[..., T], *args: Any) -> T:
    """Run work(session, *args) in one transaction, in a worker thread so a slow
    query or a password hash does not hold up other requests."""
    url = request.app[SETTINGS].database_url

    def run() -> T:
        with session_scope(url) as session:
            return work(session, *args)

    return await asyncio.to_thread(run)


def _ip(text: str) -> Optional[Address]:
    """The address in text ("1.2.3.4", "1.2.3.4:5678", "[::1]:80", "::1"), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Tuple[Network, ...]) -> bool:
    return any(address in network for network in proxies)


def client_address(request: web.Request) -> str:
    """Who is signing in, for the sign-in limits: the connection's peer, unless
    the peer is a trusted proxy; then the rightmost X-Forwarded-For hop that
    is not a trusted proxy (each proxy appends its own peer, so only the part
    to the right of the first stranger was written by proxies we trust)."""
    peer = _ip(request.remote or "")
    if peer is None:
        return request.remote or "-"
    proxies = request.app[TRUSTED_PROXIES]
    if not _trusted(peer, proxies):
        return str(peer)
    client = peer
    hops = [hop for value in request.headers.getall("X-Forwarded-For", [])
            for hop in value.split(",")]
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:
            break   # not an address: what is left of it cannot be trusted either
        client = address
        if not _trusted(address, proxies):
            break
    return str(client)


def signed_in(request: web.Request) -> Optional[auth.SignedIn]:
    return request.get("staff")


def render(request: web.Request, template: str, context: Dict[str, Any],
           status: int = 200, headers: Optional[Dict[str, str]] = None) -> web.Response:
    staff = signed_in(request)
    page = request.app[TEMPLATES].get_template(template).render(
        staff=staff, csrf=staff.csrf_token if staff else "", now=now(request), home=home(staff),
        clinic_tz=request.app[CLINIC_TZ], **context)
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8",
                        headers=headers)


def error_page(request: web.Request, status: int, message: Optional[str] = None,
               title: Optional[str] = None) -> web.Response:
    default_title, default_message = ERROR_MESSAGES.get(
        status, ("Something went wrong", "Something went wrong on our side. Please try again."))
    return render(request, "error.html", {"title": title or default_title,
                                          "message": message or default_message,
                                          "status": status}, status=status)


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, *,
               max_age: Optional[int] = None, path: str = "/",
               samesite: str = auth.SAME_SITE) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite=samesite, secure=request.app[SETTINGS].review_secure_cookie)


def clear_cookie(response: web.StreamResponse, request: web.Request, name: str,
                 path: str = "/") -> None:
    set_cookie(response, request, name, "", max_age=0, path=path)


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    label = resource.canonical if resource is not None else "(no route)"
    ids = " ".join(f"{key}={request.match_info[key]}" for key in LOGGED_IDS
                   if key in request.match_info)
    return f"{label} {ids}" if ids else label


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request, with nothing a patient or a password could be in."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away
        raise
    finally:
        staff = signed_in(request)
        level = logging.DEBUG if request.match_info.route.name == "health" else logging.INFO
        access_logger.log(level, "%s %s %d staff=%s %.0fms", request.method,
                          _route_label(request), status, staff.staff_id if staff else "-",
                          (time.perf_counter() - started) * 1000)


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_page(request, exc.status)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001  (the page must not show a traceback)
        # Class and stack only: an exception's message can carry data (a SQL error
        # quotes its parameters, which may be what a patient wrote).
        stack = "".join(traceback.format_tb(exc.__traceback__))
        logger.error("unhandled %s on %s\n%s", type(exc).__name__, _route_label(request), stack)
        return error_page(request, 500)


def required_role(route_name: Optional[str]) -> Optional[str]:
    """The role a signed-in page needs (None: any account; also a path that
    matched no route, which answers 404 whoever asks)."""
    if route_name is None or route_name in ANY_ROLE_ROUTES:
        return None
    return "author" if route_name.startswith("authoring") else "nurse"


def home(staff: Optional[auth.SignedIn]) -> str:
    """Where an account starts: the escalations for a nurse, else the authors' inbox."""
    return "/authoring" if staff is not None and not staff.is_nurse and staff.is_author else "/"


@web.middleware
async def require_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.route.name in PUBLIC_ROUTES:
        return await handler(request)
    token = request.cookies.get(auth.SESSION_COOKIE)
    staff = await in_db(request, auth.current_session, token, now(request)) if token else None
    if staff is None:
        target = "/login"
        if request.method in ("GET", "HEAD") and request.path != "/":
            target += "?next=" + quote(request.path_qs, safe="/")
        response = web.HTTPSeeOther(target)
        if token:
            clear_cookie(response, request, auth.SESSION_COOKIE)
        raise response
    request["staff"] = staff
    role = required_role(request.match_info.route.name)
    if role is not None and role not in staff.roles:
        return error_page(request, 403, ROLE_REFUSED[role], title="Not for your account")
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = "aftercare-review"  # not the library and version
    if request.match_info.route.name == "static":
        response.headers["Cache-Control"] = "no-cache"
    else:
        response.headers["Cache-Control"] = "no-store"


def _templates(clinic_tz: ZoneInfo) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    filters.install(env, clinic_tz)
    return env


def _clinic_zone(settings: Settings) -> ZoneInfo:
    """Times are shown in the clinic's zone (from the protocol), else UTC."""
    try:
        from aftercare.protocol import load_protocol

        return ZoneInfo(load_protocol(settings.protocol_path).clinic.timezone)
    except Exception:  # noqa: BLE001  (a protocol error is reported by the other services)
        return ZoneInfo("UTC")


def build_app(settings: Settings, clock: Clock = utc_now,
              limiter: Optional[auth.LoginLimiter] = None) -> web.Application:
    """The review application for settings' database; clock gives aware UTC now."""
    from review import authoring_views, views

    app = web.Application(middlewares=[access_log, error_pages, require_session],
                          client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[LIMITER] = limiter or auth.LoginLimiter()
    app[CLINIC_TZ] = _clinic_zone(settings)
    app[TRUSTED_PROXIES] = tuple(ipaddress.ip_network(network)
                                 for network in settings.review_trusted_proxies)
    app[TEMPLATES] = _templates(app[CLINIC_TZ])
    app.on_response_prepare.append(_security_headers)
    views.add_routes(app.router)
    authoring_views.add_routes(app.router)
    app.router.add_static("/static", STATIC_DIR, name="static")
    return app
