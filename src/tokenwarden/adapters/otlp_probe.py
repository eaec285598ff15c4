"""Proves a token at the OTLP metrics endpoint the way AWS documents it.

CloudWatch's page on OTLP bearer tokens gives one probe: `POST /v1/metrics` with
`Content-Type: application/json` and the body `{"resourceMetrics":[]}`, answered 200 for a
working key. The probe sends exactly that.

No error raised here carries the token:

- the token is checked against the bearer-token grammar (RFC 6750 `b64token`, see
  `domain.model.check_token_syntax`) before it is used: a value with CR/LF, quotes or spaces
  would otherwise make the HTTP library raise an error that quotes the header;
- an endpoint that cannot be reached, or answers something that is not HTTP (refused, reset,
  timed out, TLS failure, a garbled status line), is reported as `NO_ANSWER`, a status the
  rotation retries;
- any other failure of the HTTP stack becomes a `ProbeError` that names the exception's type
  only. It is raised after the original exception is gone, so neither `__cause__` nor
  `__context__` links to it, and no traceback, log record or trace can reach its text.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request

from tokenwarden.domain.model import check_token_syntax

EMPTY_EXPORT = b'{"resourceMetrics":[]}'

# The status the probe reports when no HTTP answer came back (connection refused, timeout).
NO_ANSWER = 599

# Failures that mean "no usable HTTP answer": worth retrying, and reported as NO_ANSWER.
# OSError covers socket errors, timeouts, ssl.SSLError and urllib's URLError; the others are
# an answer that is not HTTP (a garbled or missing status line, a body cut short).
_NO_ANSWER_ERRORS = (
    OSError,
    http.client.BadStatusLine,
    http.client.IncompleteRead,
    http.client.LineTooLong,
)


class ProbeError(RuntimeError):
    """The probe could not be sent. The message names the exception type only."""


class OtlpProbe:
    """POSTs the documented empty OTLP/JSON export with the token; returns the HTTP status."""

    def __init__(self, endpoint: str, timeout_seconds: float = 10.0) -> None:
        if not endpoint.startswith(("https://", "http://127.", "http://localhost")):
            raise ValueError(f"the OTLP endpoint must be HTTPS (loopback excepted): {endpoint}")
        self._endpoint = endpoint
        self.timeout_seconds = timeout_seconds

    def check(self, token: str) -> int:
        check_token_syntax(token)
        status, failure = self._post(token)
        if failure is not None:
            # Raised here, outside the handler that caught the original: no __context__ to it.
            raise ProbeError(f"the OTLP probe failed ({failure})")
        return status

    def _post(self, token: str) -> tuple[int, str | None]:
        """(HTTP status, None), or (0, the failure's type name): never lets an exception out."""
        try:
            request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
                self._endpoint,
                data=EMPTY_EXPORT,
                method="POST",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310
                return int(response.status), None
        except urllib.error.HTTPError as exc:  # an HTTP answer, only not 2xx
            exc.close()
            return (exc.code if isinstance(exc.code, int) else NO_ANSWER), None
        except _NO_ANSWER_ERRORS:
            return NO_ANSWER, None
        except Exception as exc:  # anything else may quote the request: keep its type only
            return 0, type(exc).__name__
