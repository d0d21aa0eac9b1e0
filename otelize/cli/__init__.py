"""The thin click CLI."""
