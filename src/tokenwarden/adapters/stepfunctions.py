"""Step Functions: start the nightly state machine and wait for its output, the run report."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tokenwarden.adapters.aws import translating

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


class ExecutionNotSucceeded(Exception):
    """The execution ended other than SUCCEEDED, or was still running when the caller stopped
    waiting. Named by its status and its error's name: an execution's cause may quote a response."""


class NightlyStateMachine:
    def __init__(
        self,
        client: SFNClient,
        state_machine_arn: str,
        sleep: Callable[[float], None] = time.sleep,
        max_poll_seconds: float = 5.0,
    ) -> None:
        self._sfn = translating(client)
        self._arn = state_machine_arn
        self._sleep = sleep
        self._max_poll_seconds = max_poll_seconds

    def run(self, execution_input: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
        """Start one execution with `execution_input` and wait (up to `timeout_seconds`) for it to
        end; its output, parsed, when it succeeded."""
        started = self._sfn.start_execution(
            stateMachineArn=self._arn, name=f"by-hand-{uuid.uuid4().hex}", input=json.dumps(execution_input)
        )
        execution = str(started["executionArn"])
        deadline = time.monotonic() + timeout_seconds
        poll = 0.1  # a quiet night ends in about a second; a big one is asked every few seconds
        while (answer := self._sfn.describe_execution(executionArn=execution))["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                raise ExecutionNotSucceeded(
                    f"execution {execution} is still running after {timeout_seconds:.0f} s; it goes on "
                    "without this command (its output is the run report)"
                )
            self._sleep(poll)
            poll = min(poll * 2, self._max_poll_seconds)
        if answer["status"] != "SUCCEEDED":
            error = answer.get("error") or "no error named"
            raise ExecutionNotSucceeded(f"execution {execution} ended {answer['status']} ({error})")
        output: dict[str, Any] = json.loads(answer.get("output") or "{}")
        return output
