"""Render the Jinja2 templates in templates/ to bytes.

Strict (a missing variable is an error), no autoescape, trailing newline kept,
output always LF and UTF-8, so the same context renders the same bytes.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jinja2

from otelize.resources import data_dir


def ts_string(value: Any) -> str:
    """A single-quoted TypeScript string literal for ``value``."""
    body = json.dumps(str(value), ensure_ascii=False)[1:-1]
    body = body.replace('\\"', '"').replace("'", "\\'")
    body = body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"'{body}'"


def ts_string_list(values: Any) -> str:
    """A TypeScript array literal of string literals, in the given order."""
    return "[" + ", ".join(ts_string(v) for v in values) + "]"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        newline_sequence="\n",
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ts_string"] = ts_string
    env.filters["ts_string_list"] = ts_string_list
    return env


def render(template_name: str, **context: Any) -> bytes:
    """Render ``templates/<template_name>`` with ``context`` to UTF-8 bytes (LF)."""
    text = environment().get_template(template_name).render(**context)
    return text.replace("\r\n", "\n").encode("utf-8")
