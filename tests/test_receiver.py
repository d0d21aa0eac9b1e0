"""The embedded OTLP/HTTP receiver, exercised over real loopback HTTP."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from otelize.verification.receiver import OtlpReceiver, ReceivedSpan
from otelize.verification.spantree import build_trees, format_tree

TRACE_ID = "5b8efff798038103d269b633813fc60c"
PARENT_ID = "eee19b7ec3c1b174"
CHILD_ID = "0af7651916cd43dd"
T0 = 1_700_000_000_000_000_000
BIG_INT = 2**53 + 1  # not representable as a JS/JSON double; must survive exactly

EXPECTED = [
    ReceivedSpan(
        trace_id=TRACE_ID,
        span_id=PARENT_ID,
        parent_span_id="",
        name="POST /api/orders",
        kind="SERVER",
        start_ns=T0,
        end_ns=T0 + 9_000_000,
        attributes={"http.request.method": "POST", "http.response.status_code": 201},
        status_code="UNSET",
        status_message="",
        events=(),
        resource={"service.name": "orders-api", "service.instance.count": 3},
        scope="otelize-test",
    ),
    ReceivedSpan(
        trace_id=TRACE_ID,
        span_id=CHILD_ID,
        parent_span_id=PARENT_ID,
        name="pg.query",
        kind="CLIENT",
        start_ns=T0 + 1_000_000,
        end_ns=T0 + 4_000_000,
        attributes={
            "db.system": "postgresql",
            "db.cached": False,
            "db.rows": BIG_INT,
            "db.ratio": 2.0,
            "db.tags": ["a", "b"],
            "db.ports": [5432, 5433],
        },
        status_code="ERROR",
        status_message="relation \"orders\" does not exist",
        events=(("exception", {"exception.type": "PgError", "exception.escaped": True}),),
        resource={"service.name": "orders-api", "service.instance.count": 3},
        scope="otelize-test",
    ),
]


# --------------------------------------------------------------------------
# Building the same export request in both encodings


def _kv(key: str, value: object) -> KeyValue:
    return KeyValue(key=key, value=_av(value))


def _av(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, list):
        av = AnyValue()
        av.array_value.values.extend(_av(v) for v in value)
        return av
    raise TypeError(value)


def make_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(
        [_kv("service.name", "orders-api"), _kv("service.instance.count", 3)]
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "otelize-test"
    ss.scope.version = "1.0.0"
    # Child first: the store must sort, not keep arrival order.
    child = ss.spans.add()
    child.trace_id = bytes.fromhex(TRACE_ID)
    child.span_id = bytes.fromhex(CHILD_ID)
    child.parent_span_id = bytes.fromhex(PARENT_ID)
    child.name = "pg.query"
    child.kind = Span.SPAN_KIND_CLIENT
    child.start_time_unix_nano = T0 + 1_000_000
    child.end_time_unix_nano = T0 + 4_000_000
    child.attributes.extend(
        [
            _kv("db.system", "postgresql"),
            _kv("db.cached", False),
            _kv("db.rows", BIG_INT),
            _kv("db.ratio", 2.0),
            _kv("db.tags", ["a", "b"]),
            _kv("db.ports", [5432, 5433]),
        ]
    )
    ev = child.events.add()
    ev.name = "exception"
    ev.time_unix_nano = T0 + 3_000_000
    ev.attributes.extend([_kv("exception.type", "PgError"), _kv("exception.escaped", True)])
    child.status.code = Status.STATUS_CODE_ERROR
    child.status.message = 'relation "orders" does not exist'

    parent = ss.spans.add()
    parent.trace_id = bytes.fromhex(TRACE_ID)
    parent.span_id = bytes.fromhex(PARENT_ID)
    parent.name = "POST /api/orders"
    parent.kind = Span.SPAN_KIND_SERVER
    parent.start_time_unix_nano = T0
    parent.end_time_unix_nano = T0 + 9_000_000
    parent.attributes.extend(
        [_kv("http.request.method", "POST"), _kv("http.response.status_code", 201)]
    )
    return req


def make_otlp_json() -> bytes:
    """OTLP/JSON as the JS SDK writes it: hex ids, int enums, mixed int encodings."""
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "orders-api"}},
                        {"key": "service.instance.count", "value": {"intValue": 3}},
                    ],
                    "droppedAttributesCount": 0,
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "otelize-test", "version": "1.0.0"},
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": CHILD_ID,
                                "parentSpanId": PARENT_ID,
                                "name": "pg.query",
                                "kind": 3,
                                "startTimeUnixNano": str(T0 + 1_000_000),
                                "endTimeUnixNano": T0 + 4_000_000,
                                "attributes": [
                                    {"key": "db.system", "value": {"stringValue": "postgresql"}},
                                    {"key": "db.cached", "value": {"boolValue": False}},
                                    {"key": "db.rows", "value": {"intValue": str(BIG_INT)}},
                                    {"key": "db.ratio", "value": {"doubleValue": 2}},
                                    {
                                        "key": "db.tags",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"stringValue": "a"},
                                                    {"stringValue": "b"},
                                                ]
                                            }
                                        },
                                    },
                                    {
                                        "key": "db.ports",
                                        "value": {
                                            "arrayValue": {
                                                "values": [{"intValue": 5432}, {"intValue": "5433"}]
                                            }
                                        },
                                    },
                                ],
                                "droppedAttributesCount": 0,
                                "events": [
                                    {
                                        "timeUnixNano": str(T0 + 3_000_000),
                                        "name": "exception",
                                        "attributes": [
                                            {
                                                "key": "exception.type",
                                                "value": {"stringValue": "PgError"},
                                            },
                                            {
                                                "key": "exception.escaped",
                                                "value": {"boolValue": True},
                                            },
                                        ],
                                        "droppedAttributesCount": 0,
                                    }
                                ],
                                "droppedEventsCount": 0,
                                "status": {
                                    "code": 2,
                                    "message": 'relation "orders" does not exist',
                                },
                                "links": [],
                                "droppedLinksCount": 0,
                            },
                            {
                                "traceId": TRACE_ID,
                                "spanId": PARENT_ID,
                                "parentSpanId": "",
                                "name": "POST /api/orders",
                                "kind": "SPAN_KIND_SERVER",
                                "startTimeUnixNano": str(T0),
                                "endTimeUnixNano": str(T0 + 9_000_000),
                                "attributes": [
                                    {"key": "http.request.method", "value": {"stringValue": "POST"}},
                                    {"key": "http.response.status_code", "value": {"intValue": 201}},
                                ],
                                "events": [],
                                "status": {"code": 0},
                                "links": [],
                            },
                        ],
                    }
                ],
            }
        ]
    }
    return json.dumps(doc).encode("utf-8")


# --------------------------------------------------------------------------
# HTTP helpers


@pytest.fixture
def rx():
    with OtlpReceiver() as receiver:
        yield receiver


def _conn(receiver: OtlpReceiver) -> http.client.HTTPConnection:
    u = urlsplit(receiver.endpoint)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


def post(receiver, body, content_type, *, path="/v1/traces", headers=None, conn=None, **kw):
    own = conn is None
    conn = conn or _conn(receiver)
    try:
        hdrs = {"Content-Type": content_type, **(headers or {})}
        conn.request("POST", path, body=body, headers=hdrs, **kw)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        if own:
            conn.close()


def pieces(data: bytes, size: int = 7):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def raw_exchange(receiver: OtlpReceiver, payload: bytes) -> bytes:
    with socket.create_connection(receiver.server_address, timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


PB = "application/x-protobuf"
JS = "application/json"


# --------------------------------------------------------------------------
# Decoding


def test_protobuf_plain_decodes_every_field(rx):
    status, ctype, body = post(rx, make_request().SerializeToString(), PB)
    assert status == 200
    assert ctype == PB
    ExportTraceServiceResponse().ParseFromString(body)  # a valid (empty) response
    assert body == b""
    assert rx.spans() == EXPECTED


def test_attribute_types_survive(rx):
    post(rx, make_request().SerializeToString(), PB)
    child = rx.spans()[1]
    attrs = child.attributes
    assert type(attrs["db.cached"]) is bool
    assert type(attrs["db.rows"]) is int and attrs["db.rows"] == BIG_INT
    assert type(attrs["db.ratio"]) is float
    assert attrs["db.tags"] == ["a", "b"]
    assert [type(x) for x in attrs["db.ports"]] == [int, int]
    assert type(child.events[0][1]["exception.escaped"]) is bool
    assert child.parent_span_id == rx.spans()[0].span_id
    assert rx.spans()[0].parent_span_id == ""


def _decode_with(encoding: str) -> list[ReceivedSpan]:
    pb = make_request().SerializeToString()
    with OtlpReceiver() as receiver:
        if encoding == "protobuf":
            result = post(receiver, pb, PB)
        elif encoding == "protobuf+gzip":
            result = post(receiver, gzip.compress(pb), PB, headers={"Content-Encoding": "gzip"})
        elif encoding == "protobuf+chunked":
            result = post(
                receiver,
                pieces(pb),
                PB,
                headers={"Transfer-Encoding": "chunked"},
                encode_chunked=True,
            )
        elif encoding == "json":
            result = post(receiver, make_otlp_json(), JS)
        elif encoding == "json+gzip+chunked":
            result = post(
                receiver,
                pieces(gzip.compress(make_otlp_json()), 5),
                "application/json; charset=utf-8",
                headers={"Content-Encoding": "gzip", "Transfer-Encoding": "chunked"},
                encode_chunked=True,
            )
        else:
            raise AssertionError(encoding)
        assert result[0] == 200, result
        return receiver.spans()


@pytest.mark.parametrize(
    "encoding", ["protobuf+gzip", "protobuf+chunked", "json", "json+gzip+chunked"]
)
def test_all_encodings_give_identical_spans(encoding):
    assert _decode_with(encoding) == EXPECTED
    # Dict form too, so a to_dict() field that differs by encoding is caught.
    assert [s.to_dict() for s in _decode_with(encoding)] == [s.to_dict() for s in EXPECTED]


def test_json_request_gets_json_response(rx):
    status, ctype, body = post(rx, make_otlp_json(), "application/json")
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == {}


def test_chunked_request_leaves_keepalive_connection_usable(rx):
    conn = _conn(rx)
    try:
        pb = make_request().SerializeToString()
        first = post(rx, pieces(pb, 3), PB, conn=conn, encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        # Same socket: fails if the chunk terminator/trailer was left unread.
        second = post(rx, make_otlp_json(), JS, conn=conn)
    finally:
        conn.close()
    assert first[0] == 200 and second[0] == 200
    assert len(rx.spans()) == 4


def test_metrics_and_logs_are_accepted_and_ignored(rx):
    for path in ("/v1/metrics", "/v1/logs"):
        status, ctype, _ = post(rx, b"\x0a\x00", PB, path=path)
        assert (status, ctype) == (200, PB)
    status, ctype, body = post(rx, b"{}", JS, path="/v1/metrics")
    assert (status, ctype, json.loads(body)) == (200, JS, {})
    assert rx.spans() == []


# --------------------------------------------------------------------------
# Bad input


BAD_REQUESTS = [
    pytest.param(b"\x0a\x05ab", PB, {}, id="truncated-protobuf"),
    pytest.param(b"{not json", JS, {}, id="invalid-json"),
    pytest.param(b"[]", JS, {}, id="json-not-object"),
    pytest.param(
        make_otlp_json().replace(TRACE_ID.encode(), b"zz" * 16), JS, {}, id="json-non-hex-id"
    ),
    pytest.param(b'{"resourceSpans": 5}', JS, {}, id="json-wrong-shape"),
    pytest.param(b"\x1f\x8b\x08\x00garbage", PB, {"Content-Encoding": "gzip"}, id="bad-gzip"),
    pytest.param(
        gzip.compress(b"\x0a\x05ab"), PB, {"Content-Encoding": "gzip"}, id="gzip-bad-protobuf"
    ),
]


@pytest.mark.parametrize("body, ctype, headers", BAD_REQUESTS)
def test_malformed_body_is_400_and_server_survives(rx, body, ctype, headers):
    status, _, _ = post(rx, body, ctype, headers=headers)
    assert status == 400
    assert rx.spans() == []
    status, _, _ = post(rx, make_request().SerializeToString(), PB)
    assert status == 200
    assert rx.spans() == EXPECTED


def test_bad_chunk_framing_is_400_and_server_survives(rx):
    reply = raw_exchange(
        rx,
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert post(rx, make_request().SerializeToString(), PB)[0] == 200
    assert len(rx.spans()) == 2


def test_unsupported_content_type_stores_nothing(rx):
    status, _, _ = post(rx, make_request().SerializeToString(), "text/plain")
    assert status == 415
    assert rx.spans() == []


# --------------------------------------------------------------------------
# Lifecycle, binding, store


def test_listens_on_loopback_only_and_ports_differ():
    with OtlpReceiver() as a, OtlpReceiver() as b:
        assert a.server_address[0] == "127.0.0.1"
        assert a.endpoint == f"http://127.0.0.1:{a.port}"
        assert a.port != 0 and b.port != 0
        assert a.port != b.port
        assert a._server.socket.getsockname() == ("127.0.0.1", a.port)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127.0.0.0/8 routing is Linux")
def test_not_reachable_on_other_addresses():
    # Sanity: in this environment a wildcard listener *is* reachable via 127.0.0.2.
    probe = socket.socket()
    probe.bind(("0.0.0.0", 0))
    probe.listen()
    try:
        socket.create_connection(("127.0.0.2", probe.getsockname()[1]), timeout=2).close()
    except OSError:
        pytest.skip("127.0.0.2 not routable here")
    finally:
        probe.close()
    with OtlpReceiver() as receiver:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", receiver.port), timeout=2)


def test_stop_closes_the_port_and_thread():
    receiver = OtlpReceiver().start()
    port, thread = receiver.port, receiver._thread
    assert post(receiver, make_request().SerializeToString(), PB)[0] == 200
    receiver.stop()
    assert not thread.is_alive()
    assert not receiver.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    assert len(receiver.spans()) == 2  # the store outlives the server
    receiver.stop()  # idempotent


def test_spans_sorted_copy_and_clear(rx):
    post(rx, make_request().SerializeToString(), PB)
    got = rx.spans()
    assert [s.span_id for s in got] == [PARENT_ID, CHILD_ID]  # arrived child first
    got.clear()
    assert len(rx.spans()) == 2  # caller got a copy
    rx.clear()
    assert rx.spans() == []


def test_same_start_time_sorted_by_span_id(rx):
    req = make_request()
    for sp in req.resource_spans[0].scope_spans[0].spans:
        sp.start_time_unix_nano = T0
    post(rx, req.SerializeToString(), PB)
    assert [s.span_id for s in rx.spans()] == sorted([PARENT_ID, CHILD_ID])


def test_wait_for_wakes_on_arrival_and_times_out(rx):
    pb = make_request().SerializeToString()
    timer = threading.Timer(0.3, post, args=(rx, pb, PB))
    timer.start()
    try:
        t = time.monotonic()
        got = rx.wait_for(lambda spans: any(s.kind == "CLIENT" for s in spans), timeout=10)
        assert time.monotonic() - t < 5
        assert [s.name for s in got] == ["POST /api/orders", "pg.query"]
    finally:
        timer.join()

    t = time.monotonic()
    got = rx.wait_for(lambda spans: len(spans) > 2, timeout=0.3)
    assert time.monotonic() - t >= 0.3
    assert len(got) == 2


def test_jsonl_path_gets_one_line_per_span(tmp_path):
    out = tmp_path / "spans.jsonl"
    with OtlpReceiver(jsonl_path=out) as receiver:
        post(receiver, make_request().SerializeToString(), PB)
        post(receiver, make_otlp_json(), JS)
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    records = sorted((json.loads(line) for line in lines), key=lambda d: d["span_id"])
    expected = sorted([s.to_dict() for s in EXPECTED] * 2, key=lambda d: d["span_id"])
    assert records == expected
    assert records[0]["events"] == [
        {"name": "exception", "attributes": {"exception.type": "PgError", "exception.escaped": True}}
    ]


# --------------------------------------------------------------------------
# Trees


def _span(span_id, parent, name, kind, start, trace="ab" * 16, **attrs):
    status = attrs.pop("_status", ("UNSET", ""))
    return ReceivedSpan(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_ns=start,
        end_ns=start + 10,
        attributes=attrs,
        status_code=status[0],
        status_message=status[1],
    )


def test_three_level_tree_text():
    spans = [
        # Deliberately shuffled; children must come out in start order.
        _span("0000000000000004", "0000000000000002", "pg.query", "CLIENT", 40,
              **{"db.system": "postgresql", "db.statement": "SELECT 1"}),
        _span("0000000000000003", "0000000000000001", "POST", "CLIENT", 60,
              **{"http.response.status_code": 502, "server.address": "payments.internal",
                 "_status": ("ERROR", "Bad Gateway")}),
        _span("0000000000000001", "", "POST /api/orders", "SERVER", 10,
              **{"http.request.method": "POST", "http.response.status_code": 201}),
        _span("0000000000000002", "0000000000000001", "orders.create", "INTERNAL", 20),
        _span("0000000000000009", "", "GET /health", "SERVER", 5, trace="cd" * 16,
              **{"http.status_code": 200}),
    ]
    trees = build_trees(spans)
    assert list(trees) == ["cd" * 16, "ab" * 16]  # ordered by first root start
    [root] = trees["ab" * 16]
    assert format_tree(root) == (
        "POST /api/orders [SERVER] 201\n"
        "  orders.create [INTERNAL]\n"
        "    pg.query [CLIENT] db.system=postgresql\n"
        '  POST [CLIENT] 502 server.address=payments.internal ERROR "Bad Gateway"'
    )
    assert format_tree(trees["cd" * 16][0]) == "GET /health [SERVER] 200"
    assert format_tree(root, attributes=("db.statement",), durations=True).splitlines()[2] == (
        '    pg.query [CLIENT] db.statement="SELECT 1" (0.0 ms)'
    )


def test_orphans_and_cycles_become_roots():
    spans = [
        _span("0000000000000001", "", "root", "SERVER", 1),
        _span("0000000000000002", "00000000000000ff", "orphan", "INTERNAL", 2),
        _span("000000000000000a", "000000000000000b", "cycle-a", "INTERNAL", 3),
        _span("000000000000000b", "000000000000000a", "cycle-b", "INTERNAL", 4),
    ]
    roots = build_trees(spans)["ab" * 16]
    assert [r.span.name for r in roots] == ["root", "orphan", "cycle-a"]
    assert format_tree(roots[2]) == "cycle-a [INTERNAL]\n  cycle-b [INTERNAL]"
    # Every span appears exactly once across the trees.
    names = [n.span.name for r in roots for _, n in r.walk()]
    assert sorted(names) == ["cycle-a", "cycle-b", "orphan", "root"]


def test_tree_from_received_spans(rx):
    post(rx, make_otlp_json(), JS)
    [root] = build_trees(rx.spans())[TRACE_ID]
    assert format_tree(root) == (
        "POST /api/orders [SERVER] 201\n"
        '  pg.query [CLIENT] db.system=postgresql ERROR "relation \\"orders\\" does not exist"'
    )
