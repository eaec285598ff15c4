"""Proves a token at the OTLP metrics endpoint with an empty protobuf export."""

from __future__ import annotations

import urllib.error
import urllib.request


class OtlpProbe:
    """POSTs an empty ExportMetricsServiceRequest (zero bytes is a valid empty message)."""

    def __init__(self, endpoint: str, timeout_seconds: float = 10.0) -> None:
        if not endpoint.startswith(("https://", "http://127.", "http://localhost")):
            raise ValueError(f"the OTLP endpoint must be HTTPS (loopback excepted): {endpoint}")
        self._endpoint = endpoint
        self._timeout = timeout_seconds

    def check(self, token: str) -> int:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._endpoint,
            data=b"",
            method="POST",
            headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            return 599
