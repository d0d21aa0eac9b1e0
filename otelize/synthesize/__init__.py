"""Edits, the import step, applying and validating, atomic writes."""
