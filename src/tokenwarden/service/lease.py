"""Per-principal leases: only one actor works on a principal's keys at a time.

A lease is a record in the ledger table, taken with a conditional write and held until
released or until it expires by itself (so a holder that crashed, was killed or timed out
never blocks a principal for longer than its lease). The reconciler, the rotation steps
and break-glass all take it. Overlapping runs (a manual invoke during the nightly run, a
revoke during a rotation) therefore never act on the same principal at once: the second
one waits a bounded time, then reports the principal as busy and changes nothing.

A rotation started by the reconciler or by break-glass is handed the lease
(`rotation:<version id>`) before `RotateSecret` is called, so Secrets Manager's background
steps find the principal reserved for them; `finishSecret` releases it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tokenwarden.ports import Clock, LedgerPort


class PrincipalBusy(RuntimeError):
    """Another run holds the principal's lease; nothing was changed."""


def rotation_owner(version_id: str) -> str:
    """The lease owner of the rotation that issues `version_id`."""
    return f"rotation:{version_id}"


@dataclass
class Leases:
    ledger: LedgerPort
    clock: Clock
    ttl_seconds: int = 300
    poll_seconds: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def acquire(
        self, principal: str, owner: str, wait_seconds: float = 0.0, ttl_seconds: int | None = None
    ) -> bool:
        """Take (or renew) the lease, waiting up to `wait_seconds` for another holder to let go."""
        ttl = ttl_seconds or self.ttl_seconds
        waited = 0.0
        while not self.ledger.acquire(principal, owner, self.clock.now(), ttl):
            if waited >= wait_seconds:
                return False
            step = min(self.poll_seconds, max(wait_seconds - waited, 0.01))
            self.sleep(step)
            waited += step
        return True

    def keep(self, principal: str, owner: str, ttl_seconds: int) -> bool:
        """Renew the lease `owner` holds, for `ttl_seconds`; False (nothing written) when it does
        not hold it, or held it but let it expire. True means nobody else held it in between."""
        return self.ledger.keep(principal, owner, self.clock.now(), ttl_seconds)

    def hand_over(self, principal: str, owner: str, to_owner: str, ttl_seconds: int) -> bool:
        """Give a held lease to `to_owner` (a rotation about to start) for `ttl_seconds`."""
        return self.ledger.hand_over(principal, owner, to_owner, self.clock.now(), ttl_seconds)

    def release(self, principal: str, owner: str) -> None:
        self.ledger.release(principal, owner)

    @contextmanager
    def held(self, principal: str, owner: str, wait_seconds: float = 0.0) -> Iterator[None]:
        """The lease for the duration of a block; PrincipalBusy when another run keeps it."""
        if not self.acquire(principal, owner, wait_seconds):
            raise PrincipalBusy(
                f"another run is working on {principal} (waited {wait_seconds:.0f} s); nothing was changed. "
                "Its lease expires by itself: run the command again in a few minutes"
            )
        try:
            yield
        finally:
            self.release(principal, owner)
