"""End to end for the messaging worker: tests/node/queue-app (Express + bullmq) instrumented,
installed and built, run against a real Redis (Debian's redis-server: `apt-get install
redis-server`) with the real OTel SDK exporting to otelize's OTLP receiver. Each job the
bullmq Worker processes is one CONSUMER span with the messaging attributes; a job whose
processor throws is an ERROR span with the exception, and still fails in bullmq. Each job
added is one PRODUCER span, inside the request that added it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from nodeutil import free_port, npm_install_cached, run_node_app
from otelize.api import instrument
from otelize.verification.receiver import OtlpReceiver
from otelize.verification.verify import telemetry_env

pytestmark = pytest.mark.node

QUEUE_APP = Path(__file__).resolve().parent / "node" / "queue-app"


@pytest.fixture(scope="module")
def redis_port():
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not installed (Debian: apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() != "PONG":
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _post(base: str, path: str, body: object) -> None:
    req = urllib.request.Request(base + path, json.dumps(body).encode(), method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        assert resp.status == 202


def _get(base: str, path: str) -> list[str]:
    with urllib.request.urlopen(base + path, timeout=15) as resp:
        return json.loads(resp.read())


def _done(base: str) -> list[str]:
    return _get(base, "/done")


@pytest.fixture(scope="module")
def consumer_spans(redis_port: int, tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    app = tmp_path_factory.mktemp("queue") / "queue-app"
    shutil.copytree(QUEUE_APP, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    result = instrument(app, settings={})
    assert "src/workers/emailWorker.ts" in result.synthesis.changes
    assert "src/queues/emailQueue.ts" in result.synthesis.changes
    assert "src/queues/videoQueue.ts" in result.synthesis.changes
    npm_install_cached(app)
    build = subprocess.run(["npm", "run", "build"], cwd=app, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr  # tsc as clean as before
    with OtlpReceiver() as rx:
        env = telemetry_env(rx.endpoint, "queue-app", None, "commonjs")
        env["REDIS_PORT"] = str(redis_port)
        with run_node_app(app, env=env) as base:
            _post(base, "/emails", {"to": "ada@example.org"})
            _post(base, "/emails", {"to": "bob@invalid"})
            _post(base, "/videos", {"id": "v1"})
            _post(base, "/videos", {"id": "broken"})
            deadline = time.monotonic() + 30
            while len(done := _done(base)) < 2 or len(_get(base, "/transcoded")) < 1:
                assert time.monotonic() < deadline, f"jobs not processed: {done}"
                time.sleep(0.1)
            time.sleep(0.5)  # the failing bull job ends after the one that succeeds is recorded
        spans = [s for s in rx.spans() if s.resource.get("service.name") == "queue-app"]
    return done, spans


def test_jobs_behave_as_before(consumer_spans) -> None:
    done, _ = consumer_spans
    assert sorted(done) == ["failed bob@invalid", "sent ada@example.org"]


def _messaging_spans(spans, name: str, kind: str, count: int, attributes: dict[str, str]) -> list:  # noqa: ANN001
    """The spans named `name`: `count` of them, each of `kind`, carrying `attributes` and a duration."""
    found = [s for s in spans if s.name == name]
    assert len(found) == count and all(s.kind == kind for s in found), [(s.name, s.kind) for s in spans]
    for s in found:
        assert {k: s.attributes.get(k) for k in attributes} == attributes, name
        assert s.duration_ns > 0
    return found


def test_one_consumer_span_per_job(consumer_spans) -> None:
    _, spans = consumer_spans
    _messaging_spans(spans, "process emails", "CONSUMER", 2, {
        "messaging.system": "bullmq",
        "messaging.destination.name": "emails",
        "messaging.operation.type": "process",
        "code.function.name": "emailWorker.processor",
    })


def test_a_throwing_processor_is_an_error_span(consumer_spans) -> None:
    _, spans = consumer_spans
    by_status = {s.status_code: s for s in spans if s.name == "process emails"}
    assert set(by_status) == {"UNSET", "ERROR"}
    failed = by_status["ERROR"]
    assert failed.status_message == "cannot deliver to bob@invalid"
    assert failed.attributes["error.type"] == "RangeError"
    assert [name for name, _ in failed.events] == ["exception"]
    assert "error.type" not in by_status["UNSET"].attributes


def test_one_producer_span_per_job_added_inside_its_request(consumer_spans) -> None:
    _, spans = consumer_spans
    producers = _messaging_spans(spans, "send emails", "PRODUCER", 2, {
        "messaging.system": "bullmq",
        "messaging.destination.name": "emails",
        "messaging.operation.type": "send",
        "code.function.name": "enqueueEmail",
    })
    by_id = {s.span_id: s for s in spans}
    for s in producers:
        assert s.status_code == "UNSET"
        # below the express request span of the POST that added the job (bullmq's own Redis calls, below it)
        chain = []
        parent = by_id.get(s.parent_span_id)
        while parent is not None:
            chain.append(parent)
            parent = by_id.get(parent.parent_span_id)
        assert any(p.kind == "SERVER" and "POST" in p.name for p in chain), [(p.name, p.kind) for p in chain]


def test_bull_jobs_get_a_producer_and_a_consumer_span(consumer_spans) -> None:
    """bull, another library: `videos.add(...)` in requestTranscode is the PRODUCER span,
    `videos.process(...)`'s inline processor the CONSUMER span of each job; the job whose
    processor throws is an ERROR span."""
    _, spans = consumer_spans
    _messaging_spans(spans, "send videos", "PRODUCER", 2, {
        "messaging.system": "bull",
        "messaging.destination.name": "videos",
        "messaging.operation.type": "send",
        "code.function.name": "requestTranscode",
    })
    consumers = _messaging_spans(spans, "process videos", "CONSUMER", 2, {
        "messaging.system": "bull",
        "messaging.destination.name": "videos",
        "messaging.operation.type": "process",
        "code.function.name": "videoQueue.processor",
    })
    by_status = {s.status_code: s for s in consumers}
    assert set(by_status) == {"UNSET", "ERROR"}
    assert by_status["ERROR"].status_message == "cannot transcode broken"
    assert by_status["ERROR"].attributes["error.type"] == "TypeError"
