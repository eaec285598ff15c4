"""Proves a token at the OTLP metrics endpoint the way AWS documents it.

CloudWatch's page on OTLP bearer tokens gives one probe: `POST /v1/metrics` with
`Content-Type: application/json` and the body `{"resourceMetrics":[]}`, answered 200 for a
working key. The probe sends exactly that.

The token is checked against the bearer-token grammar (RFC 6750 `b64token`, see
`domain.model.check_token_syntax`) before it is used: a value with CR/LF, quotes or spaces would otherwise make the HTTP library raise an
error that quotes the header, and so the token. No error raised here carries it.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from tokenwarden.domain.model import check_token_syntax

EMPTY_EXPORT = b'{"resourceMetrics":[]}'

# The status the probe reports when no HTTP answer came back (connection refused, timeout).
NO_ANSWER = 599


class OtlpProbe:
    """POSTs the documented empty OTLP/JSON export with the token; returns the HTTP status."""

    def __init__(self, endpoint: str, timeout_seconds: float = 10.0) -> None:
        if not endpoint.startswith(("https://", "http://127.", "http://localhost")):
            raise ValueError(f"the OTLP endpoint must be HTTPS (loopback excepted): {endpoint}")
        self._endpoint = endpoint
        self.timeout_seconds = timeout_seconds

    def check(self, token: str) -> int:
        check_token_syntax(token)
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._endpoint,
            data=EMPTY_EXPORT,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError):
            return NO_ANSWER
        except Exception as exc:  # any other failure may quote the request: keep its type only
            raise ProbeError(f"the OTLP probe failed ({type(exc).__name__})") from None


class ProbeError(RuntimeError):
    """The probe could not be sent. The message names the exception type only."""
