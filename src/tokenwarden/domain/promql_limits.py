"""How far back a PromQL query may read: the limits :mod:`tokenwarden.domain.promql` checks every
query against, in a module of their own so that the settings can bound the health window without
loading the query builder (every Lambda handler imports the settings at cold start)."""

from __future__ import annotations

from datetime import timedelta

MAX_RANGE = timedelta(days=7)
"""CloudWatch reads at most seven days of samples for one PromQL query: range selectors, subquery
ranges and the lookback all count. Queries that would read more are refused before sending."""

LOOKBACK = timedelta(minutes=5)
"""How far back an instant selector looks for a sample (Prometheus' default lookback delta)."""

MAX_LAST_SAMPLE_WINDOW = MAX_RANGE - LOOKBACK
"""The longest window of :func:`last_sample_query`: its first instant looks back :data:`LOOKBACK`."""
