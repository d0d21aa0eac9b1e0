"""Benchmarks and synthetic-app generation (not collected by the default pytest run)."""
