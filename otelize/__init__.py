"""otelize: deterministic, offline OpenTelemetry instrumentation for Express/TypeScript."""

__version__ = "0.1.0"
