"""Runtime overhead of otelize: sample-app under load, three variants.

    python -m tests.bench.bench_runtime [--duration 10] [--connections 10] [--rounds 2]
                                        [--json out.json] [--profile] [--workdir DIR]

Variants, all built from sample-app/ into a temporary folder:

  a  uninstrumented   sample-app as is (npm ci + build), `node dist/index.js`
  b  auto-only        the same dist/, `node --require @opentelemetry/auto-instrumentations-node/register
                      dist/index.js`, with the package set otelize used to add (OLD_SET: the
                      auto-instrumentations-node meta package and its SDK) as node_modules
  c  otelize          `otelize instrument --out` + npm install + build, `node dist/index.js`
                      (its index imports ./tracing first)

Every variant gets the same environment: SIMULATED_LATENCY_MS=0, quiet logging
(NODE_ENV=production, LOG_LEVEL=silent), and the OTLP/HTTP exporter pointed at
a local sink that answers 200 and drops the body (metrics and logs exporters
off). The load is the same request mix for every variant (tests/bench/node/
driver.mjs, autocannon's programmatic API): 2 s of warm-up, then the measured
run. The app is restarted for every run, so its in-memory state (stock of p1)
starts identical. Variants run interleaved (a, b, c, a, b, c, ...) and each
reports the median over the rounds.

Target (issue "Dependencies"): throughput of c >= 1.3 x throughput of b.

Footprint: installed packages and node_modules size of b's set (the old one) and
c's (the new one); cold start: spawn to the first accepted connection, median of
--starts starts per variant.

`--profile` adds one more run of each variant with `node --cpu-prof` and
prints the top self-time frames and the self time per package.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_APP = REPO_ROOT / "sample-app"
BENCH_NODE = Path(__file__).resolve().parent / "node"
DRIVER = BENCH_NODE / "driver.mjs"

sys.path.insert(0, str(REPO_ROOT / "tests"))
from nodeutil import free_port, npm_install, npm_install_cached  # noqa: E402

AUTO_REGISTER = "@opentelemetry/auto-instrumentations-node/register"
TARGET_RATIO = 1.3
# what otelize added before it chose packages per app (git history of rules/otel-packages.yaml)
OLD_SET = {
    "@opentelemetry/api": "1.9.0",
    "@opentelemetry/auto-instrumentations-node": "0.81.2",
    "@opentelemetry/exporter-trace-otlp-proto": "0.223.0",
    "@opentelemetry/resources": "2.12.0",
    "@opentelemetry/sdk-node": "0.223.0",
    "@opentelemetry/semantic-conventions": "1.45.0",
}
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


# --------------------------------------------------------------------------- sink


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real collector

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        # The body must be consumed (Content-Length or chunked) for keep-alive to work.
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            length = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                length += len(self.rfile.read(size))
                self.rfile.readline()  # CRLF after the chunk
        else:
            length = int(self.headers.get("Content-Length") or 0)
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
        sink: DiscardingSink = self.server.sink  # type: ignore[attr-defined]
        sink.record(self.path, length)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access log
        pass


class DiscardingSink:
    """A loopback OTLP/HTTP endpoint that answers 200 to every POST and drops the body."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _SinkHandler)
        self._server.daemon_threads = True
        self._server.sink = self  # type: ignore[attr-defined]
        self._lock = threading.Lock()
        self.requests: dict[str, int] = defaultdict(int)
        self.bytes = 0
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-sink", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, path: str, length: int) -> None:
        with self._lock:
            self.requests[path] += 1
            self.bytes += length

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return sum(self.requests.values()), self.bytes

    def __enter__(self) -> DiscardingSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    cpu_model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "node": node,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg": _loadavg(),
    }


def _loadavg() -> str | None:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


def format_machine(m: Mapping[str, Any]) -> str:
    load = f"; load average {m['loadavg']}" if m.get("loadavg") else ""
    return f"machine: {m['nproc']} CPU(s), {m['cpu_model']}; node {m['node']}; {m['platform']}{load}"


def write_json(report: Mapping[str, Any], dest: str) -> None:
    """A benchmark's --json: the report to stdout for `-`, else to the file dest."""
    text = json.dumps(report, indent=2)
    if dest == "-":
        print(text)
    else:
        Path(dest).write_text(text + "\n")


# --------------------------------------------------------------------------- build


@dataclass
class Variant:
    key: str
    label: str
    cwd: Path
    node_args: list[str] = field(default_factory=list)
    entry: str = "dist/index.js"


def _run(cmd: Sequence[str], cwd: Path, what: str, timeout: float = 600) -> None:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}) in {cwd}:\n{proc.stdout}\n{proc.stderr}")


def _copy_app(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("node_modules", "dist", ".otelize-cache"))


def build_plain(workdir: Path, source: Path = SAMPLE_APP) -> Path:
    """(a) sample-app as is: npm ci + build."""
    out = workdir / "plain" / source.name
    _copy_app(source, out)
    npm_install(out)
    _run(["npm", "run", "build"], out, "npm run build (plain)")
    return out


def build_otelize(workdir: Path, source: Path = SAMPLE_APP, helper_rev: str | None = None) -> Path:
    """(c) `otelize instrument --out`, npm install (cached), build.

    helper_rev: replace the generated src/otel.ts with templates/otel.ts.j2 as of
    that git revision (to compare helper versions end to end).
    """
    out = workdir / "otelize" / source.name
    out.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "otelize", "instrument", str(source), "--out", str(out)], REPO_ROOT,
         "otelize instrument")
    if helper_rev is not None:
        from tests.bench.bench_helper import render_helper

        (out / "src" / "otel.ts").write_bytes(render_helper(git_rev=helper_rev))
    npm_install_cached(out)
    _run(["npm", "run", "build"], out, "npm run build (otelize)")
    return out


def make_auto(workdir: Path, plain: Path, otelize: Path | None = None) -> Path:
    """(b) the plain dist/ with the app's packages plus OLD_SET installed (cached)."""
    out = workdir / "auto" / plain.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(plain / "dist", out / "dist")
    pkg = json.loads((plain / "package.json").read_text())
    pkg["dependencies"] = dict(sorted({**pkg.get("dependencies", {}), **OLD_SET}.items()))
    (out / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    npm_install_cached(out)
    return out


def footprint(app: Path) -> dict[str, Any]:
    """Installed packages (every node_modules/<name>/package.json, nested too) and the
    apparent size of node_modules in bytes."""
    modules = (app / "node_modules").resolve()
    count, size = 0, 0
    for folder, dirs, files in os.walk(modules):
        here = Path(folder)
        parent = here.parent
        is_package = parent.name == "node_modules" or (parent.name.startswith("@") and parent.parent.name == "node_modules")
        if "package.json" in files and is_package:
            count += 1
        for name in files:
            with contextlib.suppress(OSError):
                size += (here / name).lstat().st_size
        dirs[:] = [d for d in dirs if d != ".bin"]
    return {"packages": count, "bytes": size}


def cold_start(variant: Variant, env: Mapping[str, str], starts: int) -> dict[str, Any]:
    """Seconds from spawn to the first accepted connection, median of `starts` starts."""
    times = []
    for _ in range(starts):
        t0 = time.monotonic()
        with running(variant, env, poll=0.005):
            times.append(time.monotonic() - t0)
    return {"median_s": float(statistics.median(times)), "runs_s": times}


def variants_for(plain: Path, auto: Path, otelize: Path) -> list[Variant]:
    return [
        Variant("a", "uninstrumented", plain),
        Variant("b", "auto-only", auto, ["--require", AUTO_REGISTER]),
        Variant("c", "otelize", otelize),
    ]


def build_variants(workdir: Path, source: Path = SAMPLE_APP, helper_rev: str | None = None) -> list[Variant]:
    plain = build_plain(workdir, source)
    otelize = build_otelize(workdir, source, helper_rev)
    auto = make_auto(workdir, plain, otelize)
    return variants_for(plain, auto, otelize)


def ensure_driver() -> None:
    npm_install(BENCH_NODE)


# --------------------------------------------------------------------------- run


def bench_env(sink_endpoint: str) -> dict[str, str]:
    """The environment every variant runs with (the sink's endpoint for the OTLP exporter)."""
    return {
        "SIMULATED_LATENCY_MS": "0",
        "NODE_ENV": "production",
        "LOG_LEVEL": "silent",
        "OTEL_SERVICE_NAME": "shop-api",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink_endpoint,
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def running(variant: Variant, env: Mapping[str, str], extra_node_args: Sequence[str] = (),
            poll: float = 0.05) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the variant on a free port; yield (base URL, process); SIGTERM (then kill) on exit."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NODE_OPTIONS"))}
    child_env.update(env)
    port = free_port()
    child_env["PORT"] = str(port)
    cmd = ["node", *extra_node_args, *variant.node_args, variant.entry]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=variant.cwd, env=child_env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)

        def output() -> str:
            log.flush()
            log.seek(0)
            return log.read().decode("utf-8", "replace")

        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not _accepts(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"{' '.join(cmd)} in {variant.cwd} exited with {proc.returncode}:\n{output()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(cmd)} did not listen on {port} in time:\n{output()}")
                time.sleep(poll)
            yield f"http://127.0.0.1:{port}", proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=STOP_TIMEOUT_S)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(url: str, duration: float, connections: int, warmup: float, app_pid: int | None = None) -> dict[str, Any]:
    """Run the driver; with app_pid, also measure the app's CPU time over the measured run only."""
    cfg = {"url": url, "duration": duration, "connections": connections, "warmup": warmup,
           "handshake": app_pid is not None}
    proc = subprocess.Popen(["node", str(DRIVER), json.dumps(cfg)], cwd=BENCH_NODE, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cpu = None
        if app_pid is not None:
            assert proc.stdout is not None and proc.stdin is not None
            line = proc.stdout.readline()
            if '"warm"' not in line:
                proc.wait(timeout=30)
                raise RuntimeError(f"driver failed before the measured run:\n{line}{proc.stderr.read() if proc.stderr else ''}")
            cpu0 = cpu_seconds(app_pid)
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out, err = proc.communicate(timeout=duration + warmup + 120)
        if app_pid is not None:
            cpu = cpu_seconds(app_pid) - cpu0
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"driver failed (exit {proc.returncode}):\n{out}\n{err}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if cpu is not None:
        result["app_cpu_s"] = cpu
        result["app_cpu_us_per_req"] = 1e6 * cpu / result["requests_total"] if result["requests_total"] else None
    return result


def run_once(variant: Variant, sink: DiscardingSink, duration: float, connections: int, warmup: float,
             extra_node_args: Sequence[str] = ()) -> dict[str, Any]:
    before = sink.snapshot()
    with running(variant, bench_env(sink.endpoint), extra_node_args) as (url, proc):
        result = drive(url, duration, connections, warmup, proc.pid)
    after = sink.snapshot()
    result["sink_posts"] = after[0] - before[0]
    result["sink_bytes"] = after[1] - before[1]
    return result


def summarise(key: str, label: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    return {
        "key": key,
        "label": label,
        "rounds": len(runs),
        "requests_per_s": med([r["requests_per_s"] for r in runs]),
        "p99_ms": med([r["latency_ms"]["p99"] for r in runs]),
        "p50_ms": med([r["latency_ms"]["p50"] for r in runs]),
        "non_2xx": med([r["non_2xx"] for r in runs]),
        "requests_total": med([r["requests_total"] for r in runs]),
        "errors": med([r["errors"] + r["timeouts"] for r in runs]),
        "sink_bytes": med([r["sink_bytes"] for r in runs]),
        "sink_posts": med([r["sink_posts"] for r in runs]),
        "cpu_us_per_req": med([r["app_cpu_us_per_req"] for r in runs if r.get("app_cpu_us_per_req")] or [0.0]),
        "cpu_us_per_req_runs": [r.get("app_cpu_us_per_req") for r in runs],
        "requests_per_s_runs": [r["requests_per_s"] for r in runs],
        "p99_ms_runs": [r["latency_ms"]["p99"] for r in runs],
    }


def ratios(summary: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    def ratio(num: str, den: str, metric: str) -> float | None:
        d = summary[den][metric]
        return summary[num][metric] / d if d else None

    return {
        "rps_c_over_b": ratio("c", "b", "requests_per_s"),
        "rps_c_over_a": ratio("c", "a", "requests_per_s"),
        "rps_b_over_a": ratio("b", "a", "requests_per_s"),
        "p99_c_over_b": ratio("c", "b", "p99_ms"),
        "p99_c_over_a": ratio("c", "a", "p99_ms"),
        # Capacity per CPU second (1 / CPU time per request): robust when other
        # processes share the machine, unlike raw req/s.
        "cpu_capacity_c_over_b": ratio("b", "c", "cpu_us_per_req"),
        "cpu_capacity_c_over_a": ratio("a", "c", "cpu_us_per_req"),
    }


def run_benchmark(variants: list[Variant], duration: float, connections: int, rounds: int, warmup: float,
                  log: Any = sys.stderr) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {v.key: [] for v in variants}
    with DiscardingSink() as sink:
        for rnd in range(rounds):
            for v in variants:
                result = run_once(v, sink, duration, connections, warmup)
                runs[v.key].append(result)
                print(f"  round {rnd + 1} {v.key} ({v.label}): {result['requests_per_s']:.0f} req/s, "
                      f"p99 {result['latency_ms']['p99']} ms, non-2xx {result['non_2xx']}, "
                      f"app CPU {result.get('app_cpu_us_per_req') or 0:.0f} us/req", file=log, flush=True)
    summary = {v.key: summarise(v.key, v.label, runs[v.key]) for v in variants}
    rat = ratios(summary)
    return {
        "config": {"duration_s": duration, "connections": connections, "rounds": rounds, "warmup_s": warmup},
        "variants": summary,
        "ratios": rat,
        "target": {"rps_c_over_b_min": TARGET_RATIO,
                   "met": rat["rps_c_over_b"] is not None and rat["rps_c_over_b"] >= TARGET_RATIO},
        "runs": runs,
    }


def format_table(report: Mapping[str, Any]) -> str:
    rows = [("variant", "req/s (median)", "req/s per round", "p99 ms", "p50 ms", "non-2xx", "CPU us/req",
             "sink KiB")]
    for s in report["variants"].values():
        rows.append((
            f"{s['key']} {s['label']}",
            f"{s['requests_per_s']:.0f}",
            " / ".join(f"{x:.0f}" for x in s["requests_per_s_runs"]),
            f"{s['p99_ms']:.1f}",
            f"{s['p50_ms']:.1f}",
            f"{s['non_2xx']:.0f} of {s['requests_total']:.0f}",
            f"{s['cpu_us_per_req']:.0f}",
            f"{s['sink_bytes'] / 1024:.0f}",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    r = report["ratios"]

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines.append("")
    lines.append(f"throughput c/b (otelize / auto-only): {f(r['rps_c_over_b'])}   "
                 f"(target >= {TARGET_RATIO}: {'met' if report['target']['met'] else 'MISSED'})")
    lines.append(f"throughput c/a (otelize / uninstrumented): {f(r['rps_c_over_a'])}   "
                 f"b/a: {f(r['rps_b_over_a'])}")
    lines.append(f"p99 c/b: {f(r['p99_c_over_b'])}   p99 c/a: {f(r['p99_c_over_a'])}")
    lines.append(f"requests per app-CPU-second c/b: {f(r['cpu_capacity_c_over_b'])}   c/a: "
                 f"{f(r['cpu_capacity_c_over_a'])}   (CPU us/req of b / of c; less sensitive to a busy machine)")
    return "\n".join(lines)


def format_startup(report: Mapping[str, Any]) -> str:
    lines = []
    for key, label in (("b", "old set (auto-instrumentations-node)"), ("c", "new set (otelize)")):
        f = report["footprint"][key]
        lines.append(f"node_modules of {key} {label}: {f['packages']} packages, {f['bytes'] / 2**20:.1f} MiB")
    for key, s in report["cold_start"].items():
        lines.append(f"cold start {key} (spawn to first accepted connection): median {s['median_s'] * 1000:.0f} ms "
                     f"({' / '.join(f'{x * 1000:.0f}' for x in s['runs_s'])})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- profile


def _package_of(url: str) -> str:
    if not url:
        return "(native/vm)"
    if url.startswith("node:"):
        return "node-internals"
    marker = "node_modules/"
    idx = url.rfind(marker)
    if idx != -1:
        rest = url[idx + len(marker):].split("/")
        return "/".join(rest[:2]) if rest[0].startswith("@") else rest[0]
    if "/dist/" in url:
        return "app" + ("(otel.ts/tracing.ts)" if url.endswith(("/otel.js", "/tracing.js")) else "")
    return url


def summarise_cpuprofile(path: Path, top: int = 20) -> dict[str, Any]:
    """Self time per frame and per package from a V8 .cpuprofile."""
    prof = json.loads(path.read_text())
    nodes = {n["id"]: n for n in prof["nodes"]}
    self_us: dict[int, float] = defaultdict(float)
    for node_id, delta in zip(prof.get("samples", []), prof.get("timeDeltas", [])):
        self_us[node_id] += max(delta, 0)
    total = sum(self_us.values()) or 1.0
    frames: dict[tuple[str, str, int], float] = defaultdict(float)
    packages: dict[str, float] = defaultdict(float)
    for node_id, us in self_us.items():
        cf = nodes[node_id]["callFrame"]
        name = cf.get("functionName") or "(anonymous)"
        url = cf.get("url", "")
        frames[(name, url, cf.get("lineNumber", -1) + 1)] += us
        pkg = name if name.startswith("(") and not url else _package_of(url)
        packages[pkg] += us
    busy = total - packages.get("(idle)", 0.0)
    top_frames = sorted(frames.items(), key=lambda kv: -kv[1])[:top]
    return {
        "total_ms": total / 1000,
        "busy_ms": busy / 1000,
        "frames": [
            {"function": n, "location": f"{_short(u)}:{line}", "self_ms": us / 1000, "self_pct_busy": 100 * us / busy}
            for (n, u, line), us in top_frames
        ],
        "packages": [
            {"package": p, "self_ms": us / 1000, "self_pct_busy": 100 * us / busy if p != "(idle)" else None}
            for p, us in sorted(packages.items(), key=lambda kv: -kv[1])
        ],
    }


def _short(url: str) -> str:
    idx = url.rfind("node_modules/")
    if idx != -1:
        return url[idx + len("node_modules/"):]
    if "/dist/" in url:
        return "dist/" + url.split("/dist/", 1)[1]
    return url


def profile_variants(variants: list[Variant], duration: float, connections: int, warmup: float,
                     outdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with DiscardingSink() as sink:
        for v in variants:
            pdir = outdir / f"cpuprof-{v.key}"
            shutil.rmtree(pdir, ignore_errors=True)
            pdir.mkdir(parents=True)
            result = run_once(v, sink, duration, connections, warmup, ["--cpu-prof", f"--cpu-prof-dir={pdir}"])
            files = sorted(pdir.glob("*.cpuprofile"))
            if not files:
                out[v.key] = {"error": "no .cpuprofile written", "requests_per_s": result["requests_per_s"]}
                continue
            out[v.key] = {"label": v.label, "requests_per_s": result["requests_per_s"], "file": str(files[-1]),
                          **summarise_cpuprofile(files[-1])}
    return out


def format_profile(profile: Mapping[str, Any], top_frames: int = 12, top_packages: int = 12) -> str:
    lines: list[str] = []
    for key, p in profile.items():
        if "error" in p:
            lines.append(f"[{key}] {p['error']}")
            continue
        lines.append(f"[{key} {p['label']}] {p['requests_per_s']:.0f} req/s under --cpu-prof; "
                     f"busy {p['busy_ms']:.0f} of {p['total_ms']:.0f} ms sampled")
        lines.append("  self time by package:")
        for row in [r for r in p["packages"] if r["package"] != "(idle)"][:top_packages]:
            lines.append(f"    {row['self_pct_busy']:5.1f}%  {row['self_ms']:8.0f} ms  {row['package']}")
        lines.append("  top frames (self):")
        for row in p["frames"][:top_frames]:
            if row["function"] == "(idle)":
                continue
            lines.append(f"    {row['self_pct_busy']:5.1f}%  {row['function']}  {row['location']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.bench_runtime", description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10, help="measured seconds per run (default 10)")
    ap.add_argument("--connections", type=int, default=10, help="concurrent connections (default 10)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds a,b,c (default 2)")
    ap.add_argument("--warmup", type=float, default=2, help="warm-up seconds before each measured run")
    ap.add_argument("--json", metavar="FILE", help="also write the report as JSON ('-' for stdout)")
    ap.add_argument("--profile", action="store_true", help="one extra --cpu-prof run per variant; print top frames")
    ap.add_argument("--helper-rev", metavar="REV",
                    help="variant c uses templates/otel.ts.j2 as of this git revision for src/otel.ts")
    ap.add_argument("--workdir", metavar="DIR", help="build here and keep it (default: a temp dir, removed)")
    ap.add_argument("--starts", type=int, default=5, help="cold starts per variant (default 5)")
    args = ap.parse_args(argv)

    if shutil.which("node") is None or shutil.which("npm") is None:
        print("node/npm not found", file=sys.stderr)
        return 2
    machine = machine_info()
    print(format_machine(machine), file=sys.stderr)
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir).resolve()
            if workdir.exists():
                shutil.rmtree(workdir)
            workdir.mkdir(parents=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="otelize-bench-")))
        print(f"building variants in {workdir} ...", file=sys.stderr, flush=True)
        ensure_driver()
        variants = build_variants(workdir, helper_rev=args.helper_rev)
        print(f"running {args.rounds} interleaved round(s): {args.duration:g} s measured + {args.warmup:g} s "
              f"warm-up, {args.connections} connections", file=sys.stderr, flush=True)
        by_key = {v.key: v for v in variants}
        report_footprint = {k: footprint(by_key[k].cwd) for k in ("b", "c")}
        with DiscardingSink() as sink:
            starts = {v.key: cold_start(v, bench_env(sink.endpoint), args.starts) for v in variants}
        report = run_benchmark(variants, args.duration, args.connections, args.rounds, args.warmup)
        report["footprint"] = report_footprint
        report["cold_start"] = starts
        report["machine"] = machine
        report["machine"]["loadavg_after"] = _loadavg()
        report["helper_rev"] = args.helper_rev
        if args.profile:
            print("profiling (one --cpu-prof run per variant) ...", file=sys.stderr, flush=True)
            prof_dir = workdir / "profiles" if args.workdir else REPO_ROOT / "tests" / "bench" / "out"
            report["profile"] = profile_variants(variants, args.duration, args.connections, args.warmup, prof_dir)

    print(format_machine(machine) + (f" (after: {machine['loadavg_after']})" if machine.get("loadavg_after") else ""))
    if args.helper_rev:
        print(f"variant c helper: templates/otel.ts.j2 at {args.helper_rev}")
    print(f"load: {args.connections} connections, {args.duration:g} s measured after {args.warmup:g} s warm-up, "
          f"median of {args.rounds} interleaved round(s); mix: GET /api/products/p1, GET /api/products?q=desk, "
          f"GET /api/users/u1, GET /api/products/p1/inventory, POST /api/orders (p1 x1)")
    print(format_table(report))
    print()
    print(format_startup(report))
    if "profile" in report:
        print()
        print(format_profile(report["profile"]))
    if args.json:
        write_json(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
