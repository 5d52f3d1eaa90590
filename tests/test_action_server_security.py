"""The action server as `aftercare run` starts it (aftercare.services): on
127.0.0.1 only by default; beyond loopback only with a token, which the real
Rasa server sends from endpoints.yml and nobody else has; and never callable
from a web page."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Optional

import pytest

from aftercare.rasa_client import RasaClient
from aftercare.services import (
    MODEL_DIR, Service, ServiceError, running_services, start_action_server, wait_until_healthy,
)
from aftercare.settings import Settings, SettingsError, get_settings
from aftercare.store import db, repository
from support.processes import free_port

pytestmark = pytest.mark.e2e   # real servers in processes of their own, as the neighbours
needs_model = pytest.mark.skipif(not (MODEL_DIR / "aftercare.tar.gz").exists(),
                                 reason="no trained model: run `make model` first")
TOKEN = "t0ken-for-the-action-server-3f9a1c77e2"
RED_FLAG = "my lips have swollen right up and i can't breathe properly"
LISTEN = "0A"   # TCP_LISTEN in /proc/net/tcp



def settings_for(tmp_path: Path, **changes) -> Settings:
    url = f"sqlite:///{tmp_path / 'aftercare.db'}"
    db.migrate(url)
    return replace(get_settings(), database_url=url,
                   action_server_url=f"http://127.0.0.1:{free_port()}/webhook",
                   rasa_url=f"http://127.0.0.1:{free_port()}", **changes)


def port_of(settings: Settings) -> int:
    return int(settings.action_server_url.rsplit(":", 1)[1].split("/")[0])


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on port, from /proc/net/tcp(6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == LISTEN:
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6,
                                           words))
    return found


def outside_address() -> Optional[str]:
    """This machine's address on its default route (not loopback), if it has one."""
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000":   # the default route
            gateway = socket.inet_ntoa(bytes.fromhex(fields[2])[::-1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.connect((gateway, 9))   # no packet is sent; picks the source address
                return udp.getsockname()[0]
    return None


def action_call(sender_id: str) -> bytes:
    """What Rasa posts to run the safety check on a red-flag message."""
    return json.dumps({
        "next_action": "action_safety_check", "sender_id": sender_id, "version": "3.6.2",
        "domain": {},
        "tracker": {"sender_id": sender_id, "slots": {}, "events": [], "paused": False,
                    "followup_action": None, "active_loop": {},
                    "latest_action_name": "action_listen",
                    "latest_message": {"text": RED_FLAG, "entities": [],
                                       "intent": {"name": "report_swelling",
                                                  "confidence": 0.99}}},
    }).encode()


def post(url: str, body: bytes, content_type: str = "application/json",
         headers: Optional[dict] = None) -> int:
    request = urllib.request.Request(url, data=body, method="POST",
                                      headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def escalated_senders(settings: Settings) -> list[str]:
    with db.session_scope(settings.database_url) as session:
        return [e.sender_id for e in repository.list_escalations(session)]


@pytest.fixture
def started() -> Iterator[list[Service]]:
    services: list[Service] = []
    yield services
    for service in services:
        service.stop()


def test_by_default_it_listens_on_loopback_only_and_refuses_web_pages(tmp_path, monkeypatch,
                                                                         started):
    monkeypatch.delenv("AFTERCARE_ACTION_SERVER_HOST", raising=False)
    monkeypatch.delenv("AFTERCARE_ACTION_SERVER_TOKEN", raising=False)
    settings = settings_for(tmp_path)
    assert settings.action_server_host == "127.0.0.1" and settings.action_server_token is None
    started.append(start_action_server(settings, tmp_path / "log"))
    wait_until_healthy(started, timeout=180)
    port = port_of(settings)
    assert listening_addresses(port) == {"127.0.0.1"}
    outside = outside_address()
    if outside is not None:
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.settimeout(5)
            probe.connect((outside, port))
    webhook = settings.action_server_url
    # A page in a browser on this computer: a form post (not JSON), or fetch() with an Origin.
    assert post(webhook, action_call("page-1"), content_type="text/plain") == 415
    assert post(webhook, action_call("page-2"),
                headers={"Origin": "https://evil.example"}) == 403
    assert escalated_senders(settings) == []
    # Rasa's own call (no token configured, loopback) still runs the action.
    assert post(webhook, action_call("rasa-like")) == 200
    assert escalated_senders(settings) == ["rasa-like"]


def test_a_failing_action_call_keeps_the_patients_words_out_of_reply_and_log(tmp_path, started):
    settings = settings_for(tmp_path)
    started.append(start_action_server(settings, tmp_path / "log"))
    wait_until_healthy(started, timeout=180)
    words = "Priya Shah says her cheek is weeping"
    broken = json.loads(action_call("broken"))
    broken["tracker"]["latest_message"] = [words]   # not a mapping: the action fails
    request = urllib.request.Request(settings.action_server_url, method="POST",
                                     data=json.dumps(broken).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(request, timeout=30)
    assert failure.value.code == 500
    assert words not in failure.value.read().decode()
    assert words not in (tmp_path / "log" / "action-server.log").read_text()
    assert escalated_senders(settings) == []


def test_beyond_loopback_it_will_not_start_without_a_token(tmp_path, started):
    settings = settings_for(tmp_path, action_server_host="0.0.0.0", action_server_token=None)
    started.append(start_action_server(settings, tmp_path / "log"))
    with pytest.raises(ServiceError, match="exited with status 2"):
        wait_until_healthy(started, timeout=180)
    log = (tmp_path / "log" / "action-server.log").read_text()
    assert "AFTERCARE_ACTION_SERVER_TOKEN" in log
    assert listening_addresses(port_of(settings)) == set()


def test_a_token_that_is_too_short_is_a_clear_configuration_error(monkeypatch):
    monkeypatch.setenv("AFTERCARE_ACTION_SERVER_TOKEN", "short")
    with pytest.raises(SettingsError, match="AFTERCARE_ACTION_SERVER_TOKEN"):
        get_settings()
    monkeypatch.setenv("AFTERCARE_ACTION_SERVER_TOKEN", TOKEN)
    assert get_settings().action_server_token == TOKEN


@needs_model
def test_with_a_token_only_rasa_gets_actions_run(tmp_path):
    settings = settings_for(tmp_path, action_server_host="0.0.0.0", action_server_token=TOKEN)
    with db.session_scope(settings.database_url) as session:
        repository.add_patient(session, name="Token", sender_id="token-patient",
                               treated_at=datetime.now(timezone.utc) - timedelta(hours=3),
                               timezone="Europe/London")
    with running_services(settings, log_dir=tmp_path / "log", timeout=300,
                          include_review=False):
        port = port_of(settings)
        targets = [f"http://127.0.0.1:{port}/webhook"]
        outside = outside_address()
        if outside is not None:   # as another machine on the network would call it
            targets.append(f"http://{outside}:{port}/webhook")
        for number, target in enumerate(targets):
            assert post(target, action_call(f"intruder-{number}")) == 401
            assert post(f"{target}?token=not-{TOKEN}", action_call(f"intruder-{number}")) == 401
        assert escalated_senders(settings) == []
        # The real Rasa server has the token in its endpoint config: actions run.
        replies = RasaClient(settings.rasa_url).send("token-patient", RED_FLAG)
        assert replies and replies[0].startswith("⚠️ Please call 999 now")
        assert escalated_senders(settings) == ["token-patient"]
        # And with the token itself, from anywhere the server listens.
        assert post(f"{targets[-1]}?token={TOKEN}", action_call("holder")) == 200
        assert escalated_senders(settings) == ["token-patient", "holder"]
