"""A process that ends on its own (a script, a job) exports its spans through the
generated tracing.ts (flush on 'beforeExit'), keeps its exit code, and is kept alive at
most ~5 s when the collector does not answer. Real SDK (tests/node/otel-helper), real tsc."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from nodeutil import npm_install
from otelize.project.model import Project
from otelize.verification.receiver import OtlpReceiver
from otelize.verification.verify import telemetry_env
from otelize.workers import config
from otelize.workers.base import WorkerContext

pytestmark = pytest.mark.node
HELPER_PROJECT = Path(__file__).resolve().parent / "node" / "otel-helper"

JOB = """\
import './tracing';
import { trace } from '@opentelemetry/api';

const tracer = trace.getTracer('job');
tracer.startActiveSpan('nightly-job', (span) => {
  span.setAttribute('job.items', 3);
  span.end();
});
process.exitCode = Number(process.env['JOB_EXIT_CODE'] || 0);
"""


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm_install(HELPER_PROJECT)
    root = tmp_path_factory.mktemp("job")
    (root / "node_modules").symlink_to(HELPER_PROJECT / "node_modules", target_is_directory=True)
    (root / "src").mkdir()
    pkg = b'{"name": "job", "version": "1.0.0"}'
    (root / "package.json").write_bytes(pkg)
    (root / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
        "target": "ES2022", "module": "commonjs", "strict": True, "rootDir": "src", "outDir": "dist",
        "types": ["node"], "noUnusedLocals": True}, "include": ["src"]}))
    project = Project(root, json.loads(pkg), pkg, {}, [], "commonjs", "4.21.2", 4, "src", "dist", None)
    ctx = WorkerContext(project, {}, {}, None, [], "src/job.ts", {})  # type: ignore[arg-type]
    (root / "src" / "tracing.ts").write_bytes(config.render_tracing(ctx))
    (root / "src" / "job.ts").write_text(JOB)
    proc = subprocess.run(["node", str(HELPER_PROJECT / "node_modules" / "typescript" / "bin" / "tsc"), "-p", str(root)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def _run(job: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = subprocess.run(["node", "dist/job.js"], cwd=job, env=env, capture_output=True, text=True, timeout=60)
    return proc, time.monotonic() - start


def test_a_job_that_ends_on_its_own_exports_its_spans(job: Path) -> None:
    with OtlpReceiver() as rx:
        env = {**telemetry_env(rx.endpoint, "job", None, "commonjs"), "JOB_EXIT_CODE": "3",
               "OTEL_BSP_SCHEDULE_DELAY": "30000"}  # the batch would not export on its own
        proc, _ = _run(job, env)
        assert proc.returncode == 3, proc.stderr  # the job's own exit code
        spans = [s for s in rx.spans() if s.name == "nightly-job"]
    assert len(spans) == 1 and spans[0].attributes.get("job.items") == 3


def test_an_unanswering_collector_keeps_the_process_at_most_the_deadline(job: Path) -> None:
    with OtlpReceiver() as rx:  # the same job against a collector that answers, for the startup cost
        _, baseline = _run(job, {**telemetry_env(rx.endpoint, "job", None, "commonjs"), "OTEL_BSP_SCHEDULE_DELAY": "30000"})
    with socket.socket() as blackhole:  # accepts connections, never replies
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(16)
        endpoint = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        # the flush is the first export (a batch already in flight when the loop would empty
        # keeps it alive itself, up to OTEL_EXPORTER_OTLP_TIMEOUT: the SDK's bound, not ours)
        env = {**telemetry_env(endpoint, "job", None, "commonjs"), "OTEL_EXPORTER_OTLP_TIMEOUT": "30000",
               "OTEL_BSP_SCHEDULE_DELAY": "30000"}
        proc, seconds = _run(job, env)
    assert proc.returncode == 0, proc.stderr
    # the deadline is 5 s; the export itself would wait 30 s
    assert seconds - baseline < 10, f"kept alive {seconds - baseline:.1f}s longer than with a collector"


def test_sdk_env_config_chooses_the_exporter(job: Path) -> None:
    # OTEL_TRACES_EXPORTER=console prints the span; none exports nothing and still exits 0
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    proc, _ = _run(job, env)
    assert proc.returncode == 0 and "nightly-job" in proc.stdout, proc.stderr
    with OtlpReceiver() as rx:
        env = {**telemetry_env(rx.endpoint, "job", None, "commonjs"), "OTEL_TRACES_EXPORTER": "none"}
        proc, _ = _run(job, env)
        assert proc.returncode == 0, proc.stderr
        assert rx.spans() == []
