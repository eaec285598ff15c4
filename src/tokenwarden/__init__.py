"""TokenWarden: lifecycle of CloudWatch metrics API keys for Claude Code telemetry."""

__version__ = "0.1.0"
