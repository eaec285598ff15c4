"""The `tokenwarden` command line."""

import os

# EMF metrics are for a Lambda's stdout; on a terminal they are noise. Set before Powertools loads.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
