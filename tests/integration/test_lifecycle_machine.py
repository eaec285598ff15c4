"""The key lifecycle as a stateful property: any interleaving of nights, crashes, throttling,
overlapping runs, break-glass, out-of-band changes, registry edits and background rotations,
followed by clean runs, leaves every principal with one working key (DESIGN §3).

The world is the tests' in-process embedded stack with every AWS behaviour on (background
rotation with retries, IAM eventual consistency, keys without ExpirationDate, throttling and
5xx). After every step the invariants that must always hold are checked (never a third key,
never a token in a message or a result); after a clean night, and at the end of every example,
the invariants that a clean run restores.

`make test` runs the CI profile; `make soak` runs the deep one (TOKENWARDEN_SOAK_STEPS steps in
all) and prints steps, crash points and violations.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.conftest import Crash, check_invariants, open_env
from tokenwarden.domain.registry import Registry
from tokenwarden.errors import AwsError, AwsUnavailable
from tokenwarden.local import faults, iam_ssc
from tokenwarden.local.realism import StackBehaviour
from tokenwarden.service.breakglass import BreakGlassError, BreakGlassFailed
from tokenwarden.service.lease import PrincipalBusy

REMOVABLE = ("mobile", "data-science")
SOAK_STEPS = int(os.environ.get("TOKENWARDEN_SOAK_STEPS", "0"))
STEPS_PER_EXAMPLE = 50 if SOAK_STEPS else 12

# What every example of the run did, for `make soak`'s report.
TOTALS: Counter[str] = Counter()


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._patch = pytest.MonkeyPatch()
        behaviour = StackBehaviour(rotation_delay_seconds=0.01, rotation_retry_delay_seconds=0.01)
        self._world = open_env(self._patch, behaviour)
        self.env = self._world.__enter__()
        self.full = self.env.registry
        self.registry: Registry = self.full
        # Revoked without a replacement: no working key is expected until restore or reissue.
        self.revoked: set[str] = set()
        self.outputs: list[str] = []
        TOTALS["examples"] += 1

    def teardown(self) -> None:
        try:
            self._converge()
        finally:
            self._world.__exit__(None, None, None)
            self._patch.undo()

    # -- helpers --------------------------------------------------------------------------------

    def _night(self, hours: int, settle: bool = True) -> Any:
        now = self.env.clock.now() + timedelta(hours=hours)
        try:
            report = self.env.run(at=now, registry=self.registry, settle=settle)
        finally:
            self._forget_offboarded_revokes()
        self.outputs.append(report.model_dump_json())
        return report

    def _forget_offboarded_revokes(self) -> None:
        """A revoked principal that a run offboarded (its secret scheduled for deletion) starts
        afresh when it is added back; one removed and added back between two runs does not."""
        sm = self.env.client("secretsmanager")
        for p in sorted(self.revoked - self.registry.ids):
            try:
                described = sm.describe_secret(SecretId=self.env.settings.naming.secret_name(p))
            except ClientError:
                continue
            if described.get("DeletedDate"):
                self.revoked.discard(p)

    def _converge(self) -> None:
        """Clean runs (the next nights) restore the invariants that faults may break for a while."""
        injector = faults.installed_injector()
        if injector is not None:
            injector.rate = 0.0
        for _ in range(3):
            report = self._night(hours=24)
            if not report.failed and all(o.status != "locked" for o in report.outcomes):
                break
        registered = Registry(
            source=self.registry.source,
            principals=tuple(p for p in self.registry.principals if p.id not in self.revoked),
        )
        problems = check_invariants(self.env, registered) + self._leaks()
        TOTALS["violations"] += len(problems)
        assert problems == [], problems

    def _leaks(self) -> list[str]:
        """Every token issued so far, searched in every output since the last check."""
        issued = iam_ssc.issued_secrets()
        seen = json.dumps(self.env.messages()) + "".join(self.outputs)
        self.outputs.clear()
        return [f"a token reached an output ({len(token)} chars)" for token in issued if token in seen]

    def _principal(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.registry.ids)))

    # -- rules ----------------------------------------------------------------------------------

    @rule(hours=st.integers(min_value=20, max_value=30 * 24), settle=st.booleans())
    def night(self, hours: int, settle: bool) -> None:
        """Time passes (a night, or weeks) and the nightly run runs; its rotations may still be
        running in the background when the next step happens."""
        self._night(hours, settle)

    @rule(after=st.integers(min_value=1, max_value=80), hours=st.integers(min_value=1, max_value=48))
    def crash(self, after: int, hours: int) -> None:
        """The run dies after its n-th AWS call (the process is killed; nothing is caught)."""
        self.env.log.crash_after = len(self.env.log.calls) + after
        try:
            self._night(hours, settle=False)
        except Crash:
            TOTALS["crashes"] += 1
        finally:
            self.env.log.crash_after = None

    @rule(rate=st.sampled_from([0.2, 0.5]))
    def throttling_burst(self, rate: float) -> None:
        """A run during a burst of throttling and server errors."""
        injector = faults.installed_injector()
        assert injector is not None
        before, injector.rate = injector.rate, rate
        try:
            self._night(24)
        except (AwsError, AwsUnavailable):
            # A call still refused after every retry ends the run with the error (the Lambda
            # fails and alarms); what it finished stays finished, the rest waits for a later run.
            TOTALS["runs_failed_on_aws"] += 1
        finally:
            injector.rate = before
        TOTALS["bursts"] += 1

    @rule()
    def overlapping_runs(self) -> None:
        """A manual run during the nightly one: both act, never on the same principal at once."""
        second = replace(self.env.reconciler)
        now = self.env.clock.now() + timedelta(hours=24)
        self.env.clock.advance_to(now)
        errors: list[BaseException] = []

        def run(reconciler: Any) -> None:
            try:
                self.outputs.append(reconciler.run(self.registry, now).model_dump_json())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(r,)) for r in (self.env.reconciler, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        self.env.settle()
        self._forget_offboarded_revokes()
        assert errors == []
        TOTALS["overlaps"] += 1

    @rule(data=st.data(), reissue=st.booleans())
    def revoke(self, data: st.DataObject, reissue: bool) -> None:
        p = self._principal(data)
        principal = self.registry.get(p)
        assert principal is not None
        try:
            result = self.env.glass.revoke(
                principal, "leaked in a log", "machine", reissue, self.env.clock.now()
            )
        except (BreakGlassError, PrincipalBusy, BreakGlassFailed, AwsError, AwsUnavailable):
            # Nothing, or part of the revoke, happened; the operator is told. A revoke is never
            # undone by a later run, so the principal may be left without a key on purpose.
            if not reissue:
                self.revoked.add(p)
            return
        self.outputs.append(result.model_dump_json())
        if reissue:
            self.revoked.discard(p)
        elif result.revoked:
            self.revoked.add(p)
        TOTALS["revokes"] += 1

    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        p = self._principal(data)
        principal = self.registry.get(p)
        assert principal is not None
        try:
            result = self.env.glass.restore(principal, "machine", self.env.clock.now())
        except (BreakGlassError, PrincipalBusy):
            return
        self.outputs.append(result.model_dump_json())
        if result.current:
            self.revoked.discard(p)

    @rule(data=st.data(), what=st.sampled_from(["delete", "deactivate", "create"]), which=st.integers(0, 1))
    def out_of_band(self, data: st.DataObject, what: str, which: int) -> None:
        """Someone changes a key by hand in the console. (`which` is drawn whatever the world
        holds, so the drawing never depends on state outside the machine.)"""
        p = self._principal(data)
        iam = self.env.client("iam")
        user = self.env.settings.naming.user_name(p)
        keys = self.env.credentials(p)
        try:
            if what == "create":
                if len(keys) < 2:
                    iam.create_service_specific_credential(
                        UserName=user, ServiceName="cloudwatch.amazonaws.com", CredentialAgeDays=30
                    )
            elif keys:
                key = keys[which % len(keys)]["ServiceSpecificCredentialId"]
                if what == "delete":
                    iam.delete_service_specific_credential(UserName=user, ServiceSpecificCredentialId=key)
                else:
                    iam.update_service_specific_credential(
                        UserName=user, ServiceSpecificCredentialId=key, Status="Inactive"
                    )
        except ClientError:
            return
        TOTALS["out_of_band"] += 1

    @precondition(lambda self: any(p in self.registry.ids for p in REMOVABLE))
    @rule(data=st.data())
    def remove_from_registry(self, data: st.DataObject) -> None:
        p = data.draw(st.sampled_from([p for p in REMOVABLE if p in self.registry.ids]))
        self.registry = Registry(
            source=self.registry.source, principals=tuple(x for x in self.registry.principals if x.id != p)
        )

    @precondition(lambda self: self.registry.ids != self.full.ids)
    @rule()
    def add_back_to_registry(self) -> None:
        self.registry = self.full

    # -- what always holds ----------------------------------------------------------------------

    @invariant()
    def never_a_third_key(self) -> None:
        TOTALS["checks"] += 1  # after the set-up and after every step
        limits = [e for e in self.env.log.errors if "LimitExceeded" in e]
        assert limits == [], f"a third key was asked for: {limits}"

    @invariant()
    def never_a_token_in_an_output(self) -> None:
        problems = self._leaks()
        TOTALS["violations"] += len(problems)
        assert problems == []


Lifecycle.TestCase.settings = settings(
    # An example stops before its step limit now and then (about 44 of 50 steps on average):
    # enough examples that the soak's steps reach TOKENWARDEN_SOAK_STEPS.
    max_examples=max(1, SOAK_STEPS // 35) if SOAK_STEPS else 4,
    stateful_step_count=STEPS_PER_EXAMPLE,
    deadline=None,
    derandomize=not SOAK_STEPS,
    suppress_health_check=list(HealthCheck),
    # Every example is a whole world with background threads: replaying it hundreds of times to
    # shrink a failure takes longer than the suite may; the failing steps are printed as found.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
)
TestLifecycle = Lifecycle.TestCase


def teardown_module() -> None:
    if SOAK_STEPS:
        steps = TOTALS["checks"] - TOTALS["examples"]
        print(
            "\nsoak: {steps} steps in {examples} examples; {crashes} crash points, {bursts} throttling bursts, "
            "{overlaps} overlapping runs, {revokes} revokes, {oob} out-of-band changes, {aws} runs ended by AWS errors "
            "after every retry; {violations} violations".format(
                aws=TOTALS["runs_failed_on_aws"],
                steps=steps,
                examples=TOTALS["examples"],
                crashes=TOTALS["crashes"],
                bursts=TOTALS["bursts"],
                overlaps=TOTALS["overlaps"],
                revokes=TOTALS["revokes"],
                oob=TOTALS["out_of_band"],
                violations=TOTALS["violations"],
            )
        )
        assert steps >= SOAK_STEPS, f"the soak ran {steps} steps, fewer than the {SOAK_STEPS} asked for"
