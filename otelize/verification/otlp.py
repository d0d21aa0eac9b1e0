"""otlp: OTLP/HTTP trace bodies decoded into plain spans.

`decode_traces` turns a `/v1/traces` body, in either OTLP encoding (protobuf or
JSON, whose hex ids and `{low, high}` timestamps are mapped to what protobuf's
JSON mapping accepts), into `ReceivedSpan` records; `decompress` undoes a gzip
or deflate `Content-Encoding` under a size cap. Undecodable input raises
`BadRequest` (HTTP 400) or `PayloadTooLarge` (413). The server that receives the
bodies is `otelize.verification.receiver`.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otelize.jsonable import pick

# Hard cap on a request body, before and after decompression.
MAX_BODY_BYTES = 64 * 1024 * 1024

_KIND_NAMES = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}
_STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class BadRequest(Exception):
    """The request body cannot be decoded; answered with HTTP 400."""


class PayloadTooLarge(BadRequest):
    """The body exceeds MAX_BODY_BYTES; answered with HTTP 413."""


# --------------------------------------------------------------------------
# Span records


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str  # 32 lowercase hex chars
    span_id: str  # 16 lowercase hex chars
    parent_span_id: str  # 16 hex chars, or "" for a root span
    name: str
    kind: str  # INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER | UNSPECIFIED
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: str = "UNSET"  # UNSET | OK | ERROR
    status_message: str = ""
    events: tuple[tuple[str, dict[str, Any]], ...] = ()
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def is_root(self) -> bool:
        return not self.parent_span_id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (events become ``{"name", "attributes"}`` objects)."""
        return {
            **pick(self, "trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns"),
            "attributes": dict(self.attributes),
            **pick(self, "status_code", "status_message"),
            "events": [{"name": n, "attributes": dict(a)} for n, a in self.events],
            "resource": dict(self.resource),
            "scope": self.scope,
        }


def _any_value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return v.string_value
    if which == "bool_value":
        return v.bool_value
    if which == "int_value":
        return int(v.int_value)
    if which == "double_value":
        return float(v.double_value)
    if which == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        # Kept JSON-serialisable; OTLP/JSON carries bytes as base64 too.
        return base64.b64encode(v.bytes_value).decode("ascii")
    return None  # pragma: no cover - future oneof members


def _attrs(kvs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def _spans_from_request(req: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    out: list[ReceivedSpan] = []
    for rs in req.resource_spans:
        resource = _attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for sp in ss.spans:
                out.append(
                    ReceivedSpan(
                        trace_id=sp.trace_id.hex(),
                        span_id=sp.span_id.hex(),
                        parent_span_id=sp.parent_span_id.hex(),
                        name=sp.name,
                        kind=_KIND_NAMES.get(int(sp.kind), "UNSPECIFIED"),
                        start_ns=int(sp.start_time_unix_nano),
                        end_ns=int(sp.end_time_unix_nano),
                        attributes=_attrs(sp.attributes),
                        status_code=_STATUS_NAMES.get(int(sp.status.code), "UNSET"),
                        status_message=sp.status.message,
                        events=tuple((ev.name, _attrs(ev.attributes)) for ev in sp.events),
                        resource=dict(resource),
                        scope=scope,
                    )
                )
    return out


# --------------------------------------------------------------------------
# Decoding

_HEX_RE = re.compile(r"[0-9a-fA-F]*")
# Fields holding ids (bytes) in OTLP/JSON, in both key spellings ParseDict accepts.
_ID_KEYS = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)
# fixed64 nanosecond timestamps, in case a sender emits {low, high} Long objects.
_TIME_KEYS = frozenset(
    {
        "startTimeUnixNano",
        "endTimeUnixNano",
        "timeUnixNano",
        "start_time_unix_nano",
        "end_time_unix_nano",
        "time_unix_nano",
    }
)


def _hex_to_b64(value: Any) -> Any:
    """OTLP/JSON ids are hex; protobuf JSON mapping wants base64."""
    if not isinstance(value, str):
        raise BadRequest(f"id must be a hex string, got {type(value).__name__}")
    if len(value) % 2 or not _HEX_RE.fullmatch(value):
        raise BadRequest(f"id is not a hex string: {value[:40]!r}")
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _fix_json(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in _ID_KEYS:
                out[k] = _hex_to_b64(v)
            elif k in _TIME_KEYS and isinstance(v, dict) and {"low", "high"} <= v.keys():
                out[k] = ((int(v["high"]) & 0xFFFFFFFF) << 32) | (int(v["low"]) & 0xFFFFFFFF)
            else:
                out[k] = _fix_json(v)
        return out
    if isinstance(node, list):
        return [_fix_json(x) for x in node]
    return node


def _parse_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        doc = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadRequest("OTLP/JSON body must be an object")
    req = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(_fix_json(doc), req, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as e:
        raise BadRequest(f"invalid OTLP/JSON: {e}") from None
    return req


def _parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError, RecursionError) as e:
        raise BadRequest(f"invalid protobuf: {e}") from None
    return req


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_traces(body: bytes, content_type: str) -> list[ReceivedSpan]:
    """Decode an (already de-chunked, decompressed) ``/v1/traces`` body.

    Raises :class:`BadRequest` for an undecodable body or unknown content type.
    """
    media = media_type(content_type)
    if media == PROTOBUF:
        req = _parse_protobuf(body)
    elif media == JSON:
        req = _parse_json(body)
    else:
        raise BadRequest(f"unsupported content type {content_type!r}")
    return _spans_from_request(req)


def decompress(body: bytes, encoding: str | None) -> bytes:
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise BadRequest(f"unsupported content encoding {encoding!r}")
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as e:
        raise BadRequest(f"invalid {enc} body: {e}") from None
    if len(out) > MAX_BODY_BYTES:
        raise PayloadTooLarge("decompressed body too large")
    if not d.eof:
        raise BadRequest(f"truncated {enc} body")
    return out
