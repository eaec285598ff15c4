"""The handlers as Lambda runs them, fed the same events/*.json as `make invoke`."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.conftest import ROOT, Env
from tokenwarden.local.fake_context import FakeContext
from tokenwarden.local.stack import load_function


def _event(name: str) -> dict[str, object]:
    return dict(json.loads((ROOT / "events" / name).read_text()))


def test_reconcile_handler_applies_the_shipped_registry(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.use_handlers(monkeypatch)
    reconcile = load_function("reconcile")

    planned = reconcile.lambda_handler(_event("reconcile-plan.json"), FakeContext())
    assert planned["mode"] == "plan"
    assert sorted(a["principal"] for a in planned["actions"] if a["kind"] == "onboard") == [
        "data-science",
        "jdoe",
        "mobile",
        "platform-eng",
    ]
    assert env.credentials("jdoe") == []

    applied = reconcile.lambda_handler(_event("reconcile.json"), FakeContext())
    assert [o["status"] for o in applied["outcomes"]] == ["ok"] * 4
    assert len(env.credentials("jdoe")) == 1


def test_reconcile_handler_rejects_an_unknown_input_field(env: Env) -> None:
    reconcile = load_function("reconcile")
    with pytest.raises(ValueError, match="extra"):
        reconcile.lambda_handler({"mode": "apply", "surprise": True}, FakeContext())


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_rotation_events_parse(step: str) -> None:
    rotate = load_function("rotate_secret")
    parsed = rotate.RotationEvent.model_validate(_event(f"rotate_secret-{step}.json"))
    assert parsed.step == step
    assert parsed.secret_id.startswith("tokenwarden/")


def _onboard_with_handler(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.use_handlers(monkeypatch)
    load_function("reconcile").lambda_handler(_event("reconcile.json"), FakeContext())


def test_revoke_handler_runs_the_documented_payload_and_restore_undoes_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    _onboard_with_handler(env, monkeypatch)
    old = env.current_token("platform-eng")
    revoke, restore = load_function("revoke"), load_function("restore")
    context = FakeContext(function_name="tokenwarden-revoke")

    result = revoke.lambda_handler(_event("revoke.json"), context)

    assert len(result["revoked"]) == 1 and result["reissued"]
    assert result["actor"].startswith(context.invoked_function_arn)
    assert result["actor"].endswith("claimed by alice@example.com")
    assert env.current_token("platform-eng") != old
    # A key whose replacement was issued is treated as leaked: restored only when forced, with a reason.
    with pytest.raises(ValueError, match="--force"):
        restore.lambda_handler(_event("restore.json"), FakeContext(function_name="tokenwarden-restore"))
    forced = {**_event("restore.json"), "force": True, "force_reason": "the paste was in a private channel"}
    restored = restore.lambda_handler(forced, FakeContext(function_name="tokenwarden-restore"))
    assert restored["restored"] == result["revoked"][0]


def test_revoke_handler_refuses_an_unknown_principal_and_changes_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    _onboard_with_handler(env, monkeypatch)
    before = env.credentials("platform-eng")
    revoke = load_function("revoke")
    with pytest.raises(ValueError, match="unknown principal"):
        revoke.lambda_handler({**_event("revoke.json"), "principal": "nobody"}, FakeContext())
    assert env.credentials("platform-eng") == before


class _FakePromQL(BaseHTTPRequestHandler):
    """A Prometheus-compatible server answering every query with two teams' last sample times."""

    answer: ClassVar[dict[str, object]] = {}

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_health_handler_records_states_and_alerts_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _onboard_with_handler(env, monkeypatch)
    now = datetime.now(UTC)
    _FakePromQL.answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {
                    "metric": {"team.id": "platform-eng"},
                    "value": [now.timestamp(), str(now.timestamp() - 60)],
                },
                {"metric": {"team.id": "stray-team"}, "value": [now.timestamp(), str(now.timestamp() - 60)]},
            ],
        },
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakePromQL)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TOKENWARDEN_PROMQL_URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("TOKENWARDEN_PROMQL_DIALECT", "prometheus")
        health = load_function("health")
        report = health.lambda_handler(_event("health.json"), FakeContext())
        again = health.lambda_handler(_event("health.json"), FakeContext())
    finally:
        server.shutdown()
        server.server_close()
    states = {t["team"]: t["state"] for t in report["teams"]}
    assert states["platform-eng"] == "healthy"
    assert set(states) == {"platform-eng", "data-science", "mobile"}
    assert report["unregistered_teams"] == ["stray-team"]
    assert report["queries"] == 2
    assert again["transitions"] == []
