"""verify: run the app against the embedded OTLP receiver and compare with the plan.

Planned spans come from the same analysis `instrument` uses (an instrumented
app's wrappers are recognised, so its plan lists every span it will emit).
Checks:
- planned spans observed or missing (by name and kind);
- orphans: spans whose parent never arrived (an unended or lost parent);
- spans of otelize's own that lack a parent (a service/client span at the root);
- attribute keys of otelize's spans that are not current semantic conventions,
  not in the `app.`/`code.` namespaces, and not the extension `cache.hit`;
- duplicates: a span nested directly under a span of the same name and kind
  (double instrumentation), or identical siblings.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from otelize.project import yamlio

from otelize.errors import BadInput
from otelize.jsonable import pick
from otelize.verification.receiver import OtlpReceiver, ReceivedSpan
from otelize.verification.spantree import build_trees, format_tree
from otelize.verification.semconv import SemConv, load as load_semconv

SCOPE = "otelize"
TREE_ATTRIBUTES = ("http.route", "db.system.name", "db.operation.name", "db.collection.name", "cache.hit", "server.address", "error.type")


@dataclass
class PlannedCheck:
    name: str
    kind: str
    worker: str
    file: str
    line: int
    observed: int = 0


@dataclass
class VerifyResult:
    planned: list[PlannedCheck]
    spans: list[ReceivedSpan]
    orphans: list[ReceivedSpan] = field(default_factory=list)
    rootless: list[ReceivedSpan] = field(default_factory=list)
    invalid_attributes: list[tuple[str, str]] = field(default_factory=list)  # (span name, key)
    duplicates: list[ReceivedSpan] = field(default_factory=list)
    command: str = ""
    command_exit: int | None = None
    command_output: list[str] = field(default_factory=list)  # last lines of the command's output
    semconv_source: str = ""
    pending_changes: int = 0
    not_installed: str = ""  # the install command to run when the app's node_modules lack the OpenTelemetry API

    @property
    def missing(self) -> list[PlannedCheck]:
        return [p for p in self.planned if p.observed == 0]

    @property
    def ok(self) -> bool:
        return not self.missing

    def exit_code(self) -> int:
        """The CLI's exit code: 0 when every planned span was seen, else 1."""
        from otelize.errors import EXIT_CHANGES, EXIT_OK

        return EXIT_OK if self.ok else EXIT_CHANGES

    def to_dict(self) -> dict[str, Any]:
        return {
            **pick(self, "ok", "command", "command_exit"),
            "command_output_tail": self.command_output,
            "install_first": self.not_installed or None,
            "observed_spans": len(self.spans),
            "planned": [pick(p, "name", "kind", "worker", "file", "line", "observed") for p in self.planned],
            "missing": [p.name for p in self.missing],
            "coverage": round(100.0 * (len(self.planned) - len(self.missing)) / len(self.planned), 1) if self.planned else 100.0,
            "orphans": sorted({s.name for s in self.orphans}),
            "without_parent": sorted({s.name for s in self.rootless}),
            "invalid_attributes": sorted({f"{n}: {k}" for n, k in self.invalid_attributes}),
            "duplicates": sorted({s.name for s in self.duplicates}),
            "semconv": self.semconv_source,
            "pending_changes": self.pending_changes,
        }


def analyse_spans(planned: list[PlannedCheck], spans: list[ReceivedSpan], semconv: SemConv) -> VerifyResult:
    result = VerifyResult(planned, spans)
    seen = Counter((s.name, s.kind) for s in spans)
    for p in planned:
        p.observed = seen.get((p.name, p.kind), 0)
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    for s in spans:
        parent = by_id.get((s.trace_id, s.parent_span_id)) if s.parent_span_id else None
        if s.parent_span_id and parent is None:
            result.orphans.append(s)
        if s.scope == SCOPE and not s.parent_span_id:
            result.rootless.append(s)
        if s.scope == SCOPE:
            for key in sorted(s.attributes):
                if not semconv.is_valid(key):
                    result.invalid_attributes.append((s.name, key))
        if parent is not None and parent.scope == SCOPE and s.scope == SCOPE and parent.name == s.name and parent.kind == s.kind:
            result.duplicates.append(s)
    siblings = Counter((s.trace_id, s.parent_span_id, s.name, s.kind, s.start_ns, s.end_ns) for s in spans)
    result.duplicates += [s for s in spans if siblings[(s.trace_id, s.parent_span_id, s.name, s.kind, s.start_ns, s.end_ns)] > 1]
    return result


def planned_spans(root: Path, settings: Any = None) -> tuple[list[PlannedCheck], int, str]:
    """(planned spans, number of files instrument would still change, service name).

    `settings` (a Settings or a mapping) default to the app's .otelize.yaml, as for instrument."""
    from otelize.api import instrument

    res = instrument(root, write=False, settings=settings)
    seen: set[tuple[str, str]] = set()
    planned = []
    for s in res.synthesis.spans:
        if (s.name, s.kind) in seen:
            continue
        seen.add((s.name, s.kind))
        planned.append(PlannedCheck(s.name, s.kind, s.worker, s.file, s.line))
    return planned, len(res.synthesis.changes), res.analysis.project.name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def telemetry_env(endpoint: str, service: str, preload: Path | None, module: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": service,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_TRACES_SAMPLER": "always_on",
        }
    )
    if preload is not None:
        flag = "--import" if module == "esm" else "--require"
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + f" {flag} {shlex.quote(str(preload))}").strip()
    return env


def load_requests(path: Path) -> list[dict[str, Any]]:
    try:
        data = yamlio.load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"{path}: cannot read requests ({exc.__class__.__name__})") from None
    if not isinstance(data, list) or not data:
        raise BadInput(f"{path}: must be a non-empty YAML list of requests")
    out = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            method, _, url = item.partition(" ")
            item = {"method": method, "path": url}
        if not isinstance(item, dict) or "path" not in item:
            raise BadInput(f"{path}: request {i + 1}: needs at least `path` (and `method`, `json`, `expect`)")
        unknown = set(item) - {"method", "path", "json", "headers", "expect"}
        if unknown:
            raise BadInput(f"{path}: request {i + 1}: unknown key `{sorted(unknown)[0]}`")
        out.append(item)
    return out


def _send(base: str, req: dict[str, Any]) -> int:
    body = None
    headers = dict(req.get("headers") or {})
    if "json" in req:
        import json

        body = json.dumps(req["json"]).encode()
        headers.setdefault("content-type", "application/json")
    r = urllib.request.Request(base + str(req["path"]), data=body, method=str(req.get("method", "GET")).upper(), headers=headers)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BadInput(f"the app exited with code {proc.returncode} before listening on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise BadInput(f"the app did not listen on port {port} within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _settle(rx: OtlpReceiver, quiet: float = 0.6, timeout: float = 10.0) -> list[ReceivedSpan]:
    """Wait until no new span has arrived for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = len(rx.spans())
        if n != count:
            count, last_change = n, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            break
        time.sleep(0.1)
    return rx.spans()


OUTPUT_TAIL_LINES = 30


def _tail(f: Any, lines: int) -> list[str]:
    """The last `lines` lines of a binary file the command wrote to (at most 64 KiB read)."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - 65536))
    return f.read().decode("utf-8", "replace").splitlines()[-lines:]


def verify(
    root: str | Path,
    *,
    command: str | None = None,
    requests_file: Path | None = None,
    preload: bool | None = None,
    timeout: float = 300.0,
    log: Any = None,
    settings: Any = None,  # a Settings or a mapping; default: the app's .otelize.yaml
) -> VerifyResult:
    from otelize.project.discover import load_project

    from otelize.report.instrument import next_steps

    project = load_project(root)
    app = project.root
    install, _, test_cmd = next_steps(project.package_manager)
    start_cmd = test_cmd.rsplit(" ", 1)[0] + " start"  # npm start, pnpm start, yarn start, bun run start
    installed = any((d / "node_modules" / "@opentelemetry" / "api").is_dir() for d in (app, *app.parents))
    planned, pending, service = planned_spans(app, settings)
    semconv = load_semconv(app)
    out_dir = project.out_dir or "dist"
    # a JavaScript app runs its tracing.js where otelize wrote it; TypeScript, where tsc emits it
    tracing_js = app / (project.src_dir or ".") / "tracing.js" if project.language == "js" else app / out_dir / "tracing.js"
    if preload is None:
        preload = project.module == "esm" and requests_file is None
    if preload and not tracing_js.is_file():
        raise BadInput(f"{tracing_js.relative_to(app)} not found: build the instrumented app first")
    with OtlpReceiver() as rx, tempfile.TemporaryFile() as captured:
        env = telemetry_env(rx.endpoint, service, tracing_js if preload else None, project.module)
        if requests_file is not None:
            reqs = load_requests(requests_file)
            port = _free_port()
            env["PORT"] = str(port)
            cmd = command or start_cmd
            proc = subprocess.Popen(
                cmd, shell=True, cwd=app, env=env, stdout=log or captured, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                _wait_listening(port, proc, 60)
                for req in reqs:
                    status = _send(f"http://127.0.0.1:{port}", req)
                    if "expect" in req and int(req["expect"]) != status:
                        raise BadInput(f"{req.get('method', 'GET')} {req['path']}: expected {req['expect']}, got {status}")
            finally:
                _stop(proc)
            exit_code = proc.returncode
        else:
            cmd = command or test_cmd
            try:
                done = subprocess.run(
                    cmd, shell=True, cwd=app, env=env, stdout=log or captured, stderr=subprocess.STDOUT, timeout=timeout
                )
            except subprocess.TimeoutExpired:
                raise BadInput(f"`{cmd}` did not finish within {timeout:.0f}s") from None
            exit_code = done.returncode
        output = [] if log else _tail(captured, OUTPUT_TAIL_LINES)
        spans = [s for s in _settle(rx) if s.resource.get("service.name") == service]
    result = analyse_spans(planned, spans, semconv)
    result.command, result.command_exit, result.command_output = cmd, exit_code, output
    result.semconv_source, result.pending_changes = semconv.source, pending
    result.not_installed = "" if installed else install
    return result


def render_table(result: VerifyResult) -> str:
    rows = [("span", "kind", "worker", "seen", "status")]
    for p in sorted(result.planned, key=lambda p: (p.worker, p.name)):
        rows.append((p.name, p.kind, p.worker, str(p.observed), "ok" if p.observed else "MISSING"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    d = result.to_dict()
    observed = len(result.planned) - len(result.missing)
    lines += [
        "",
        f"command: {result.command} (exit {result.command_exit})",
        f"spans received: {len(result.spans)}; planned spans observed: {observed}/{len(result.planned)} ({d['coverage']}%)",
        f"orphans (parent never exported): {', '.join(d['orphans']) or 'none'}",
        f"otelize spans without a parent: {', '.join(d['without_parent']) or 'none'}",
        f"invalid attribute keys (semconv {result.semconv_source}): {', '.join(d['invalid_attributes']) or 'none'}",
        f"duplicated spans: {', '.join(d['duplicates']) or 'none'}",
    ]
    if result.not_installed:
        lines.append(f"warning: node_modules has no @opentelemetry/api: run `{result.not_installed}` first; "
                     "spans are missing because the packages are")
    if result.pending_changes:
        lines.append(f"warning: `otelize instrument` would still change {result.pending_changes} file(s); spans may be missing")
    return "\n".join(lines) + "\n"


def render_trees(result: VerifyResult, limit: int | None = None) -> str:
    out = []
    trees = build_trees(result.spans)
    for i, (_, roots) in enumerate(trees.items()):
        if limit is not None and i >= limit:
            break
        for root in roots:
            out.append(format_tree(root, attributes=TREE_ATTRIBUTES))
    return "\n\n".join(out) + ("\n" if out else "")


