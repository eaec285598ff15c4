"""`tokenwarden demo`: the whole key lifecycle on the embedded stack, about 200 days in a minute."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tokenwarden.adapters.iam import IamAdapter
from tokenwarden.domain.registry import load_registry
from tokenwarden.local import realism
from tokenwarden.local.clock import RemoteStackClock
from tokenwarden.local.stack import LocalStack, repo_root
from tokenwarden.observability import logger
from tokenwarden.settings import load_settings

SETTLE_SECONDS = 120.0


def _simulate_waits(reconciler: Any, stack: LocalStack) -> None:
    """The demo's runs wait as the stack's rotation function does: on the stack's simulated clock
    (IAM propagation, a new user becoming visible, a busy principal), not in real time."""

    def advance(seconds: float) -> None:
        stack.clock.advance(timedelta(seconds=max(0.0, seconds)))

    reconciler.engine.sleep = advance
    if isinstance(reconciler.iam, IamAdapter):
        reconciler.iam.sleep = advance
    if reconciler.leases is not None:
        reconciler.leases.sleep = advance


def _say(text: str = "") -> None:
    print(text, flush=True)


def _drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        batch = answer.get("Messages", [])
        for m in batch:
            messages.append(json.loads(m["Body"]))
        if batch:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        if len(batch) < 10:
            return messages


def _show(messages: list[dict[str, Any]], skip_summaries: bool = True) -> None:
    for m in messages:
        kind = m["metadata"]["eventType"]
        if skip_summaries and kind == "run_summary":
            continue
        _say(f"    {m['content']['title']}")
        _say(f"      {m['content']['description']}")
        for step in m["content"].get("nextSteps", []):
            _say(f"      -> {step}")


def run_demo(days: int = 200, registry_path: Path | None = None) -> int:
    import boto3

    from tokenwarden.cli.main import _FixedOrStackClock, _reconciler, render_status, status_rows
    from tokenwarden.local.laptop import send_session

    started = time.monotonic()
    registry_file = registry_path or repo_root() / "teams.yaml"
    registry = load_registry(registry_file)
    _say(
        f"TokenWarden demo: {len(registry.principals)} principals from {registry_file.name}, {days} nightly runs"
    )
    _say("Starting the embedded stack (moto + SSC extension, OTLP endpoint, VictoriaMetrics)...")
    vm = os.environ.get("TOKENWARDEN_DEMO_VICTORIAMETRICS", "1") != "0"
    stack = LocalStack(victoriametrics=vm)
    try:
        exports = stack.start()
    except FileNotFoundError as exc:
        _say(f"  VictoriaMetrics is not available ({exc}); continuing without it")
        stack = LocalStack(victoriametrics=False)
        exports = stack.start()
    try:
        with realism.simulated_client_waits(stack.clock):
            settings = load_settings()
            session = boto3.session.Session(region_name=exports["AWS_REGION"])
            sqs = session.client("sqs")
            sm = session.client("secretsmanager")
            queue = exports["TOKENWARDEN_NOTIFICATIONS_QUEUE_URL"]
            endpoint = exports["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
            t0 = stack.clock.now().replace(hour=2, minute=15, second=0, microsecond=0) + timedelta(days=1)

            reconciler = _reconciler(settings, _FixedOrStackClock(settings, None))
            _simulate_waits(reconciler, stack)

            def nightly(at: datetime) -> tuple[dict[str, int], list[str]]:
                now = RemoteStackClock(os.environ["TOKENWARDEN_STACK_URL"]).advance_to(at)
                report = reconciler.run(registry, now)
                # Secrets Manager rotates in the background; those rotations end long before the next night.
                realism.wait_idle(SETTLE_SECONDS)
                failed = [f"{o.principal}: {o.error}" for o in report.failed]
                return {k: v for k, v in report.counts.items() if not k.startswith("principals_")}, failed

            _say(f"\nDay 0 ({t0:%Y-%m-%d}): onboarding")
            counts, failed = nightly(t0)
            _show(_drain(sqs, queue))
            if failed:
                _say(f"  FAILED: {failed}")
                return 1

            first = registry.principals[0]
            secret_id = settings.naming.secret_name(first.id)
            day0_token = sm.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
            accepted = send_session(endpoint, day0_token, first.team, user="jdoe")
            _say(
                f"\n  A laptop of {first.id} exports with the token it read today: {'accepted' if accepted else 'REFUSED'}"
            )

            _say(f"\nSimulating {days} nightly runs (only nights with changes are shown)...")
            totals: dict[str, int] = {}
            old_token_checked = False
            for day in range(1, days + 1):
                at = t0 + timedelta(days=day)
                counts, failed = nightly(at)
                for k, v in counts.items():
                    totals[k] = totals.get(k, 0) + v
                messages = [m for m in _drain(sqs, queue) if m["metadata"]["eventType"] != "run_summary"]
                if day % 50 == 0 and not (messages or failed):
                    _say(f"  ... day {day} ({at:%Y-%m-%d}): nothing due")
                if messages or failed:
                    _say(
                        f"\n  Day {day} ({at:%Y-%m-%d}): "
                        + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
                    )
                    _show(messages)
                if failed:
                    _say(f"  FAILED: {failed}")
                    return 1
                if not old_token_checked and any(
                    m["metadata"]["eventType"] == "retired"
                    and m["metadata"]["additionalContext"]["principal"] == first.id
                    for m in messages
                ):
                    old_token_checked = True
                    current = sm.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")[
                        "SecretString"
                    ]
                    new_ok = send_session(endpoint, current, first.team, user="jdoe")
                    old_ok = send_session(endpoint, day0_token, first.team, user="jdoe")
                    _say(f"\n  OpenTelemetry exporter as a laptop of {first.id}:")
                    _say(
                        f"    with the current token (re-read from Secrets Manager): {'accepted' if new_ok else 'REFUSED'}"
                    )
                    _say(
                        f"    with the day-0 token, now retired:                       {'accepted' if old_ok else 'refused'}"
                    )
                    if not new_ok or old_ok:
                        _say(
                            "  UNEXPECTED: the endpoint should accept the current key and refuse the retired one"
                        )
                        return 1

            _say(f"\nTotals over {days} nights: " + ", ".join(f"{k} x{v}" for k, v in sorted(totals.items())))
            code = _break_glass_story(registry, settings, sm, sqs, queue, endpoint, stack, session)
            if code:
                return code
            code = _takeover_story(registry, settings, nightly, sm, sqs, queue, stack, session)
            if code:
                return code
            if "TOKENWARDEN_PROMQL_URL" in exports:
                code = _silent_team_story(
                    registry, settings, reconciler, nightly, sm, sqs, queue, endpoint, stack
                )
                if code:
                    return code
            else:
                _say(
                    "\n(VictoriaMetrics is not running: skipping the telemetry health story; run `make setup`.)"
                )
            now = stack.clock.now()
            inventory = reconciler.inventory()
            rows = status_rows(registry, inventory, reconciler.plan(registry, now, inventory), settings)
            _say(f"\nStatus on {now:%Y-%m-%d}:")
            _say(render_status(rows))
            _say(f"\nDemo finished in {time.monotonic() - started:.1f} s.")
            return 0
    finally:
        stack.stop()


def _silent_team_story(
    registry: Any,
    settings: Any,
    reconciler: Any,
    nightly: Any,
    sm: Any,
    sqs: Any,
    queue: str,
    endpoint: str,
    stack: LocalStack,
) -> int:
    """A team's key is rotated and retired while its laptops keep the old token."""
    from tokenwarden.local.laptop import send_session
    from tokenwarden.wiring import build_adapters, build_health_checker

    teams = sorted({p.team for p in registry.principals})
    victim = "data-science" if "data-science" in teams else teams[-1]
    owner = next(p.id for p in registry.principals if p.team == victim and p.kind == "team")
    checker = build_health_checker(settings, build_adapters(settings))
    _say("\nTelemetry health: every team's laptops send Claude Code metrics on working days;")
    _say(f"{victim}'s laptops never pick up a new key (they keep the token they read once).")

    def token_of(principal: str) -> str:
        secret = settings.naming.secret_name(principal)
        return str(sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"])

    owners = {
        team: next(p.id for p in registry.principals if p.team == team and p.kind == "team") for team in teams
    }
    profiles = {team: next(p.activity for p in registry.principals if p.id == owners[team]) for team in teams}
    laptop_token = {team: token_of(owners[team]) for team in teams}
    now = stack.clock.now()
    plan = reconciler.plan(registry, now)
    upcoming = plan.for_principal(owner).upcoming if plan.for_principal(owner) else None
    rotation_day = upcoming.at if upcoming is not None and upcoming.kind.value == "rotate" else now
    end = rotation_day + timedelta(days=12)
    day = now.replace(hour=2, minute=15) + timedelta(days=1)
    refused_shown = False
    recovered = False
    silent_seen = False
    while day <= end + timedelta(days=7) and not recovered:
        nightly(day)
        _show(
            [
                m
                for m in _drain(sqs, queue)
                if m["metadata"]["eventType"] in ("rotated", "retired")
                and m["metadata"]["additionalContext"]["principal"] == owner
            ]
        )
        if day.weekday() < 5:
            for hour in range(7, 23, 2):
                stack.clock.advance_to(day.replace(hour=hour, minute=0))
                for team in teams:
                    if not _working(profiles[team], stack.clock.now()):
                        continue
                    if team != victim or silent_seen:
                        laptop_token[team] = token_of(owners[team])
                    accepted = send_session(endpoint, laptop_token[team], team, user=f"dev-{team}")
                    if not accepted and team == victim and not refused_shown:
                        refused_shown = True
                        _say(
                            f"\n  {stack.clock.now():%Y-%m-%d %H:%M} UTC: {victim}'s laptops export with the old token: refused"
                        )
            stack.clock.advance_to(day.replace(hour=23, minute=30))
            checker.run(registry, stack.clock.now())
            for message in _drain(sqs, queue):
                kind = message["metadata"]["eventType"]
                if kind.startswith("team_"):
                    _say(f"\n  {stack.clock.now():%Y-%m-%d %H:%M} UTC, hourly health check:")
                    _show([message])
                    silent_seen = silent_seen or kind == "team_silent"
                    recovered = recovered or kind == "team_recovered"
            if silent_seen and not recovered:
                _say(
                    f"  -> {victim} re-reads its secret (the seed's get-secret-value recipe) on the next working day"
                )
        day += timedelta(days=1)
    if not (refused_shown and silent_seen and recovered):
        _say(f"  UNEXPECTED: refused={refused_shown} silent={silent_seen} recovered={recovered}")
        return 1
    final = checker.run(registry, stack.clock.now(), commit=False)
    _say("\n  Health now: " + ", ".join(f"{t.team} {t.state.value}" for t in final.teams))
    return 0


def _working(profile: Any, at: datetime) -> bool:
    from zoneinfo import ZoneInfo

    local = at.astimezone(ZoneInfo(profile.timezone))
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    return day in profile.working_days and profile.start <= local.time() < profile.end


def _break_glass_story(
    registry: Any,
    settings: Any,
    sm: Any,
    sqs: Any,
    queue: str,
    endpoint: str,
    stack: LocalStack,
    session: Any,
) -> int:
    """A leaked token at 3 a.m.: one command revokes it and puts a verified replacement in place."""
    from tokenwarden.cli.main import main as cli
    from tokenwarden.domain.audit import audit
    from tokenwarden.local.laptop import send_session

    victim = registry.principals[0]
    secret = settings.naming.secret_name(victim.id)
    leaked = str(sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"])
    _say(f"\nBreak-glass: {victim.id}'s token was pasted in a public channel.")
    _say(f"  $ tokenwarden revoke {victim.id} --reason 'token pasted in #general' --reissue")
    code = cli(
        [
            "revoke",
            victim.id,
            "--reason",
            "token pasted in #general",
            "--reissue",
            "--registry",
            registry.source,
        ]
    )
    if code:
        return code
    _show(_drain(sqs, queue))
    fresh = str(sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"])
    old_ok = send_session(endpoint, leaked, victim.team, user="attacker")
    new_ok = send_session(endpoint, fresh, victim.team, user="jdoe")
    _say(
        f"  export with the leaked token: {'ACCEPTED' if old_ok else 'refused'}; with the reissued one: {'accepted' if new_ok else 'REFUSED'}"
    )
    if old_ok or not new_ok:
        return 1

    _say(
        "\nDrift audit: someone made an API key by hand in the console (an IAM user outside TokenWarden's path)."
    )
    iam = session.client("iam")
    iam.create_user(UserName="console-cloudwatch-user")
    stack.clock.advance(timedelta(minutes=1))  # IAM is eventually consistent: a new user, a moment later
    iam.create_service_specific_credential(
        UserName="console-cloudwatch-user", ServiceName="cloudwatch.amazonaws.com"
    )
    from tokenwarden.cli.main import _FixedOrStackClock, _reconciler

    inventory = _reconciler(settings, _FixedOrStackClock(settings, None)).inventory()
    for finding in audit(registry, inventory, stack.clock.now()):
        _say(f"  {finding.kind}: {finding.detail}")
    _say("  (the audit only reports: the hand-made key is left alone)")
    return 0


def _takeover_story(
    registry: Any,
    settings: Any,
    nightly: Any,
    sm: Any,
    sqs: Any,
    queue: str,
    stack: LocalStack,
    session: Any,
) -> int:
    """A secret re-keyed with someone else's KMS key: the next run refuses it and says so."""
    ids = [p.id for p in registry.principals]
    victim = "mobile" if "mobile" in ids else ids[-1]
    secret = settings.naming.secret_name(victim)
    token = str(sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"])
    own_key = str(sm.describe_secret(SecretId=secret)["KmsKeyId"])
    other = session.client("kms").create_key(Description="a key TokenWarden does not know")["KeyMetadata"][
        "Arn"
    ]
    _say(f"\nTakeover attempt: {secret} is re-keyed with a KMS key someone else controls, so that")
    _say("they could decrypt the next token. (On AWS the secret's own policy denies UpdateSecret to")
    _say("everyone but TokenWarden and its operators; here an administrator does it.)")
    _say(f"  $ aws secretsmanager update-secret --secret-id {secret} --kms-key-id <their key>")
    sm.update_secret(SecretId=secret, KmsKeyId=other)
    at = stack.clock.now().replace(hour=2, minute=15, second=0, microsecond=0) + timedelta(days=1)
    product = logging.getLogger(logger.name)
    level = product.level
    product.setLevel(logging.CRITICAL)  # the refusal is logged as an error; the notice below says it
    try:
        _, failed = nightly(at)
    finally:
        product.setLevel(level)
    refusals = [m for m in _drain(sqs, queue) if m["metadata"]["eventType"] == "takeover_refused"]
    _show(refusals)
    current = str(sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"])
    _say(
        f"  {victim} refused by the run: {'yes' if any(f.startswith(victim) for f in failed) else 'NO'}; "
        f"token in the secret unchanged: {'yes' if current == token else 'NO'}"
    )
    if not refusals or current != token or not any(f.startswith(victim) for f in failed):
        return 1
    _say("  The platform team puts the secret's key back; the next night the run goes on as before.")
    sm.update_secret(SecretId=secret, KmsKeyId=own_key)
    _, failed = nightly(at + timedelta(days=1))
    _drain(sqs, queue)
    if failed:
        _say(f"  FAILED: {failed}")
        return 1
    return 0
