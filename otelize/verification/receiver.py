"""An embedded OTLP/HTTP trace receiver, for ``otelize verify`` and for tests.

It listens on loopback only, on a port chosen at run time, accepts
``POST /v1/traces`` in both OTLP encodings (protobuf and JSON, optionally
gzip-compressed and/or chunked; decoded by :mod:`otelize.verification.otlp`)
and keeps every received span in memory as a plain :class:`ReceivedSpan`.
Nothing here talks to the network beyond the loopback socket it opens.

Usage::

    with OtlpReceiver() as rx:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = rx.endpoint
        ...  # run the instrumented app, send it a request
        spans = rx.wait_for(lambda s: any(x.kind == "SERVER" for x in s), timeout=10)
    for roots in build_trees(spans).values():  # otelize.verification.spantree
        for root in roots:
            print(format_tree(root))
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otelize.verification.otlp import (
    JSON,
    MAX_BODY_BYTES,
    PROTOBUF,
    BadRequest,
    PayloadTooLarge,
    ReceivedSpan,
    decode_traces,
    decompress,
    media_type,
)

__all__ = ["OtlpReceiver", "ReceivedSpan"]


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
        media = media_type(self.headers.get("Content-Type"))
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
            body = decompress(raw, self.headers.get("Content-Encoding"))
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
