"""The handlers as Lambda runs them, fed the same events/*.json as `make invoke`."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, Env
from tokenwarden.local.fake_context import FakeContext
from tokenwarden.local.stack import load_function


def _event(name: str) -> dict[str, object]:
    return dict(json.loads((ROOT / "events" / name).read_text()))


def test_reconcile_handler_applies_the_shipped_registry(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    s = env.settings
    for name, value in {
        "TOKENWARDEN_TOPIC_ARN": s.topic_arn,
        "TOKENWARDEN_ROTATION_LAMBDA_ARN": s.rotation_lambda_arn,
        "TOKENWARDEN_OTLP_ENDPOINT": s.otlp_endpoint,
        "TOKENWARDEN_SECRETS_KMS_KEY_ID": s.secrets_kms_key_id,
        "TOKENWARDEN_REGISTRY_PATH": str(ROOT / "teams.yaml"),
        "TOKENWARDEN_PROBE_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
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
