"""An embedded OTLP/HTTP trace receiver, for ``otelize verify`` and for tests.

It listens on loopback only, on a port chosen at run time, accepts
``POST /v1/traces`` in both OTLP encodings (protobuf and JSON, optionally
gzip-compressed and/or chunked) and keeps every received span in memory as a
plain :class:`ReceivedSpan`.  Nothing here talks to the network beyond the
loopback socket it opens.

Usage::

    with OtlpReceiver() as rx:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = rx.endpoint
        ...  # run the instrumented app, send it a request
        spans = rx.wait_for(lambda s: any(x.kind == "SERVER" for x in s), timeout=10)
    for roots in build_trees(spans).values():
        for root in roots:
            print(format_tree(root))
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = [
    "OtlpReceiver",
    "ReceivedSpan",
    "SpanNode",
    "build_trees",
    "format_tree",
    "decode_traces",
    "DEFAULT_TREE_ATTRIBUTES",
]

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
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name,
            "kind": self.kind,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "attributes": dict(self.attributes),
            "status_code": self.status_code,
            "status_message": self.status_message,
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


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_traces(body: bytes, content_type: str) -> list[ReceivedSpan]:
    """Decode an (already de-chunked, decompressed) ``/v1/traces`` body.

    Raises :class:`BadRequest` for an undecodable body or unknown content type.
    """
    media = _media_type(content_type)
    if media == PROTOBUF:
        req = _parse_protobuf(body)
    elif media == JSON:
        req = _parse_json(body)
    else:
        raise BadRequest(f"unsupported content type {content_type!r}")
    return _spans_from_request(req)


def _decompress(body: bytes, encoding: str | None) -> bytes:
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


# --------------------------------------------------------------------------
# HTTP server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK exporters expect
    server_version = "otelize-receiver"
    timeout = 60  # idle keep-alive connections do not pin a thread forever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: this runs inside the CLI and inside tests

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise BadRequest("bad chunk size line")
            size_txt = line.split(b";", 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise BadRequest(f"bad chunk size {size_txt[:20]!r}") from None
            if size < 0:
                raise BadRequest("negative chunk size")
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise PayloadTooLarge("body too large")
            data = self.rfile.read(size)
            if len(data) != size:
                raise BadRequest("truncated chunk")
            parts.append(data)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("missing CRLF after chunk")
        # Trailer section: header lines up to an empty line.
        for _ in range(100):
            line = self.rfile.readline(8192)
            if not line:
                raise BadRequest("truncated chunked trailer")
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)
        raise BadRequest("too many trailer lines")

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if te:
            codings = [c.strip() for c in te.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise BadRequest(f"unsupported transfer encoding {te!r}")
            return self._read_chunked()
        length_txt = self.headers.get("Content-Length")
        if length_txt is None:
            return b""
        try:
            length = int(length_txt)
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length < 0:
            raise BadRequest("bad Content-Length")
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge("body too large")
        data = self.rfile.read(length)
        if len(data) != length:
            raise BadRequest("truncated body")
        return data

    def _reply(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str, *, close: bool = False) -> None:
        if close:
            self.close_connection = True
        self._reply(code, "text/plain; charset=utf-8", message.encode("utf-8", "replace"))

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        try:
            raw = self._read_body()
        except PayloadTooLarge as e:
            # The rest of the body is unread: the connection cannot be reused.
            return self._error(413, str(e), close=True)
        except BadRequest as e:
            return self._error(400, str(e), close=True)

        path = self.path.split("?", 1)[0]
        media = _media_type(self.headers.get("Content-Type"))
        reply_type = JSON if media == JSON else PROTOBUF
        empty = b"{}" if reply_type == JSON else b""

        if path.rstrip("/") != "/v1/traces":
            if path.startswith("/v1/"):
                # /v1/metrics, /v1/logs, ...: accepted and ignored.
                return self._reply(200, reply_type, empty)
            return self._error(404, f"unknown path {path}")
        if media not in (PROTOBUF, JSON):
            return self._error(415, f"unsupported content type {media!r}")
        try:
            body = _decompress(raw, self.headers.get("Content-Encoding"))
            spans = decode_traces(body, media)
        except PayloadTooLarge as e:
            return self._error(413, str(e))
        except BadRequest as e:
            return self._error(400, str(e))
        except Exception as e:  # never let a body kill the handler
            return self._error(400, f"undecodable body: {type(e).__name__}: {e}")

        self.server.receiver._add(spans)
        if reply_type == JSON:
            out = json_format.MessageToJson(ExportTraceServiceResponse()).encode("utf-8")
        else:
            out = ExportTraceServiceResponse().SerializeToString()
        self._reply(200, reply_type, out)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a broken client connection is not our problem; keep serving


class OtlpReceiver:
    """In-process OTLP/HTTP trace receiver bound to 127.0.0.1 on a free port."""

    def __init__(self, jsonl_path: str | Path | None = None) -> None:
        self.jsonl_path = Path(jsonl_path) if jsonl_path is not None else None
        self._spans: list[ReceivedSpan] = []
        self._cond = threading.Condition()
        self._jsonl_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------

    def start(self) -> OtlpReceiver:
        if self._server is not None:
            raise RuntimeError("receiver already started")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"otlp-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def server_address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("receiver not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def endpoint(self) -> str:
        """Value for OTEL_EXPORTER_OTLP_ENDPOINT (the SDK appends /v1/traces)."""
        host, port = self.server_address
        return f"http://{host}:{port}"

    @property
    def traces_url(self) -> str:
        """Value for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used verbatim by the SDK)."""
        return self.endpoint + "/v1/traces"

    # -- store -------------------------------------------------------------

    def _add(self, spans: list[ReceivedSpan]) -> None:
        if not spans:
            return
        if self.jsonl_path is not None:
            lines = "".join(json.dumps(s.to_dict(), sort_keys=True) + "\n" for s in spans)
            with self._jsonl_lock, open(self.jsonl_path, "a", encoding="utf-8") as fh:
                fh.write(lines)
        with self._cond:
            self._spans.extend(spans)
            self._cond.notify_all()

    def _sorted(self) -> list[ReceivedSpan]:
        return sorted(self._spans, key=lambda s: (s.start_ns, s.span_id))

    def spans(self) -> list[ReceivedSpan]:
        """A copy of every span received so far, sorted by (start_ns, span_id)."""
        with self._cond:
            return self._sorted()

    def clear(self) -> None:
        with self._cond:
            self._spans.clear()

    def wait_for(
        self,
        predicate: Callable[[list[ReceivedSpan]], bool],
        timeout: float,
    ) -> list[ReceivedSpan]:
        """Wait until ``predicate(spans)`` is true or ``timeout`` seconds pass.

        Returns the spans at that moment either way; check the predicate
        again (or the result) to tell which happened.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                current = self._sorted()
                if predicate(current):
                    return current
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return current
                # Wake on every new batch; also re-check periodically in case
                # the predicate depends on something besides the spans.
                self._cond.wait(min(remaining, 0.1))


# --------------------------------------------------------------------------
# Trees


@dataclass(eq=False)
class SpanNode:
    span: ReceivedSpan
    children: list[SpanNode] = field(default_factory=list)

    def walk(self) -> Iterable[tuple[int, SpanNode]]:
        """Depth-first (depth, node) pairs, this node first at depth 0."""
        stack: list[tuple[int, SpanNode]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, c) for c in reversed(node.children))


def _order(s: ReceivedSpan) -> tuple[int, str]:
    return (s.start_ns, s.span_id)


def build_trees(spans: Iterable[ReceivedSpan]) -> dict[str, list[SpanNode]]:
    """Group spans by trace and link children to parents.

    Returns ``{trace_id: [root nodes]}``. A span whose parent was not received
    is treated as a root, so nothing is dropped. Roots and children are sorted
    by (start_ns, span_id); traces appear in order of their first root.
    """
    by_trace: dict[str, list[ReceivedSpan]] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)

    result: dict[str, list[SpanNode]] = {}
    for trace_id, items in by_trace.items():
        items.sort(key=_order)
        nodes = [SpanNode(s) for s in items]
        by_id: dict[str, SpanNode] = {}
        for n in nodes:
            by_id.setdefault(n.span.span_id, n)
        roots: list[SpanNode] = []
        for n in nodes:
            parent = by_id.get(n.span.parent_span_id) if n.span.parent_span_id else None
            if parent is None or parent is n:
                roots.append(n)
            else:
                parent.children.append(n)  # already in start order
        # Spans caught in a parent cycle are unreachable from any root:
        # detach each such span from its parent and make it a root.
        reached = {id(n) for r in roots for _, n in r.walk()}
        for n in nodes:
            if id(n) not in reached:
                parent = by_id[n.span.parent_span_id]
                parent.children = [c for c in parent.children if c is not n]
                roots.append(n)
                reached.update(id(m) for _, m in n.walk())
        roots.sort(key=lambda n: _order(n.span))
        result[trace_id] = roots
    return dict(sorted(result.items(), key=lambda kv: _order(kv[1][0].span)))


DEFAULT_TREE_ATTRIBUTES: tuple[str, ...] = (
    "db.system",
    "db.operation",
    "db.operation.name",
    "messaging.system",
    "rpc.method",
    "peer.service",
    "server.address",
)

_HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")


def _fmt_value(v: Any) -> str:
    if isinstance(v, str):
        return v if v and re.fullmatch(r"[\w./:@-]+", v) else json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, separators=(",", ":"))


def _span_line(s: ReceivedSpan, attributes: Sequence[str], durations: bool) -> str:
    parts = [s.name or "<unnamed>", f"[{s.kind}]"]
    for key in _HTTP_STATUS_KEYS:
        if key in s.attributes:
            parts.append(str(s.attributes[key]))
            break
    for key in attributes:
        if key in s.attributes:
            parts.append(f"{key}={_fmt_value(s.attributes[key])}")
    if durations:
        parts.append(f"({s.duration_ns / 1e6:.1f} ms)")
    if s.status_code == "ERROR":
        parts.append(f"ERROR {json.dumps(s.status_message)}" if s.status_message else "ERROR")
    return " ".join(parts)


def format_tree(
    root: SpanNode,
    *,
    attributes: Sequence[str] = DEFAULT_TREE_ATTRIBUTES,
    durations: bool = False,
) -> str:
    """Render a span tree, one line per span, children indented by two spaces.

    Line format: ``NAME [KIND] [HTTP_STATUS] [key=value ...] [(D ms)] [ERROR "msg"]``,
    e.g. ``POST /api/orders [SERVER] 201``. ``attributes`` selects which span
    attributes are shown as ``key=value``; ``durations`` adds the span duration.
    """
    return "\n".join(
        "  " * depth + _span_line(node.span, attributes, durations)
        for depth, node in root.walk()
    )
