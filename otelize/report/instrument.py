"""The instrument report: JSON for tools, Markdown for reviewers, a short human summary."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otelize.run.instrument import InstrumentResult

# (install, build, test) per package manager, detected from the lockfile
# (project.package_manager). `bun test` is bun's own test runner, not the
# package.json script, hence `bun run test`.
NEXT_STEPS = {
    "npm": ("npm install", "npm run build", "npm test"),
    "pnpm": ("pnpm install", "pnpm run build", "pnpm test"),
    "yarn": ("yarn install", "yarn build", "yarn test"),
    "bun": ("bun install", "bun run build", "bun run test"),
}


def next_steps(package_manager: str) -> tuple[str, str, str]:
    return NEXT_STEPS.get(package_manager, NEXT_STEPS["npm"])


def to_json(result: InstrumentResult) -> dict[str, Any]:
    syn, analysis = result.synthesis, result.analysis
    return {
        "app": {
            "name": analysis.project.name,
            "entry": analysis.entry,
            "module": analysis.project.module,
            "express": analysis.project.express_major,
            "package_manager": analysis.project.package_manager,
        },
        "spans": [s.to_dict() for s in syn.spans],
        "skipped": [
            {"file": s.file, "line": s.line, "symbol": s.symbol, "reason": s.reason, "worker": s.worker} for s in syn.skips
        ],
        "files": {"created": syn.created, "modified": syn.modified},
        "packages": dict(sorted(syn.packages.items())),
        "reverted": [{"file": f, "reason": r} for f, r in syn.reverted],
        "unparsable": [{"file": f, "reason": r} for f, r in analysis.unparsable],
        "notes": syn.notes,
    }


def render_json(result: InstrumentResult) -> str:
    return json.dumps(to_json(result), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def entry_words(entry: str | None) -> str:
    return f"entry `{entry}`" if entry else "no entry point found"


def render_markdown(result: InstrumentResult) -> str:
    data = to_json(result)
    app = data["app"]
    lines = [f"# otelize report: {app['name']}", ""]
    spans = data["spans"]
    by_worker: dict[str, int] = {}
    for s in spans:
        by_worker[s["worker"]] = by_worker.get(s["worker"], 0) + 1
    summary = ", ".join(f"{n} {w}" for w, n in sorted(by_worker.items())) or "none"
    lines += [
        f"otelize added OpenTelemetry tracing to **{app['name']}** ({entry_words(app['entry'])}, {app['module']}, "
        f"Express {app['express']}).",
        "",
        f"- **{len(spans)} spans** ({summary}), {sum(1 for s in spans if s['added'])} of them added by this run",
        f"- **{len(data['files']['created'])} files created**, **{len(data['files']['modified'])} modified**",
        f"- **{len(data['packages'])} packages** added to package.json",
        f"- **{len(data['skipped'])} functions skipped** (reasons below)",
        "",
    ]
    from otelize.workers.config import NOT_LOADED

    from otelize.workers.deps.choose import LEFT_OUT

    not_loaded = [s for s in data["skipped"] if s["worker"] == "config" and s["reason"].startswith(NOT_LOADED)]
    left_out = [s for s in data["skipped"] if s["worker"] == "dependency" and s["reason"].startswith(LEFT_OUT)]
    if data["unparsable"] or data["reverted"] or not_loaded or left_out:
        lines += ["## Needs attention", ""]
        for item in not_loaded:
            lines.append(f"- **Tracing is not loaded when the app runs**: every span stays a no-op until you do it. {item['reason'][len(NOT_LOADED) + 2:]}")
        for item in left_out:
            lines.append(f"- **`{item['symbol']}` not added**: {item['reason'][len(LEFT_OUT) + 2:]}")
        for item in data["unparsable"]:
            lines.append(f"- `{item['file']}`: not parsed, left untouched ({item['reason']})")
        for item in data["reverted"]:
            lines.append(f"- `{item['file']}`: reverted ({item['reason']})")
        lines.append("")
    files = data["files"]
    if files["created"] or files["modified"]:
        lines += ["## Files", ""]
        lines += [f"- created `{f}`" for f in files["created"]]
        lines += [f"- modified `{f}`" for f in files["modified"]]
        lines.append("")
    if spans:
        lines += [
            "## Spans",
            "",
            "Lines: *source* is the line in the code before instrumenting, *instrumented* the line after it.",
            "",
            "| span | kind | worker | file | source line | instrumented line | new | attributes |",
            "|---|---|---|---|---:|---:|---|---|",
        ]
        for s in spans:
            attrs = ", ".join(f"`{k}`" for k in s["attributes"])
            new = "yes" if s["added"] else "no"
            lines.append(f"| `{s['name']}` | {s['kind']} | {s['worker']} | `{s['file']}` | {s['line']} | "
                         f"{s['instrumented_line']} | {new} | {attrs} |")
        lines.append("")
    if data["packages"]:
        lines += ["## Packages", ""]
        lines += [f"- `{name}@{version}`" for name, version in data["packages"].items()]
        lines.append("")
    if data["skipped"]:
        lines += ["## Skipped", "", "| where | symbol | reason |", "|---|---|---|"]
        for s in data["skipped"]:
            lines.append(f"| `{s['file']}:{s['line']}` | `{s['symbol']}` | {s['reason']} |")
        lines.append("")
    if data["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in data["notes"]] + [""]
    install, build, test = next_steps(app["package_manager"])
    lines += [
        "## Next steps",
        "",
        f"1. `{install}` to fetch the OpenTelemetry packages.",
        f"2. `{build}` and `{test}`: the app's behaviour is unchanged.",
        "3. Point `OTEL_EXPORTER_OTLP_ENDPOINT` at your collector, or run `otelize verify` to see the spans.",
        "4. `otelize strip` removes everything otelize added.",
        "",
    ]
    return "\n".join(lines)


def summary(result: InstrumentResult, *, mode: str) -> str:
    """What this run changed (each file, then a count), and the app's totals apart from it."""
    if result.cached:
        return "otelize: nothing to do (unchanged since the last clean run; .otelize-cache)"
    syn = result.synthesis
    verb = {"write": "instrumented", "check": "would change", "diff": "would change", "out": "wrote"}[mode]
    added = sum(1 for s in syn.spans if s.added)
    totals = f"the app has {len(syn.spans)} span(s) in all, {len(syn.skips)} function(s) skipped"
    parts: list[str] = []
    if mode != "diff":  # a diff names its files already
        parts += [f"otelize: {verb} {path}{'' if old is not None else ' (new file)'}" for path, (old, _) in
                  sorted(syn.changes.items())]
    parts.append(
        f"otelize: {verb} {len(syn.changes)} file(s): {len(syn.created)} created, {len(syn.modified)} modified; "
        f"{added} span(s) added, {len(syn.packages)} package(s) added; {totals}"
    )
    if result.out_dir is not None:
        parts.append(f"otelize: instrumented copy in {result.out_dir}")
    if syn.packages and mode in ("write", "out"):
        install, build, test = next_steps(result.analysis.project.package_manager)
        scripts = result.analysis.project.package_json.get("scripts")
        if isinstance(scripts, dict) and "build" in scripts:
            parts.append(f"otelize: next: `{install}`, then `{build}` and `{test}`")
        else:  # a JavaScript app without a build step
            parts.append(f"otelize: next: `{install}`, then `{test}`")
        from otelize.workers.deps.toolchain import package_manager_note

        project = result.analysis.project
        note = package_manager_note(project.root, project.package_json)
        if note:
            parts.append(f"otelize: note: {note}")
    for f, r in result.analysis.unparsable:
        parts.append(f"otelize: warning: {f}: left untouched: {r}")
    for f, r in syn.reverted:
        parts.append(f"otelize: warning: {f}: reverted: {r}")
    if not syn.changes:
        first = f"otelize: nothing to do (already instrumented; {totals})"
        if result.not_loaded:
            first = f"otelize: no edits to make (already instrumented; {totals}), but tracing is not loaded: see the warning"
        parts = [first] + parts[1:]
    return "\n".join(parts)


def unified_diff(result: InstrumentResult) -> str:
    return diff_changes(result.synthesis.changes)


def diff_changes(changes: dict[str, tuple[bytes | None, bytes]]) -> str:
    out: list[str] = []
    for path, (old, new) in sorted(changes.items()):
        a = (old or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
        b = new.decode("utf-8", errors="replace").splitlines(keepends=True)
        out.extend(
            difflib.unified_diff(a, b, fromfile="/dev/null" if old is None else f"a/{path}", tofile=f"b/{path}")
        )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)


def check_report_path(root: str | Path, report: Path) -> None:
    """Refuse a `--report` path that is an existing file of the project (package.json, a
    source file, anything), also through a symlink; an earlier otelize report may be replaced."""
    from otelize.errors import BadInput

    real_root = Path(root).resolve()
    target = report.resolve()
    if not (target == real_root or real_root in target.parents):
        return
    if not os.path.lexists(report) and not target.exists():
        return
    if target.is_file() and _is_report(target):
        return
    raise BadInput(f"{report}: is a file of the project; --report never overwrites one (choose a new path)")


def _is_report(path: Path) -> bool:
    """Whether `path` holds a report otelize wrote (markdown or JSON)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError:
        return False
    if head.startswith(b"# otelize report: "):
        return True
    try:
        data = json.loads(head)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and list(data)[:4] == ["app", "spans", "skipped", "files"]
