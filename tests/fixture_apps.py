"""Every fixture app under tests/fixtures (a folder with a package.json), for the snapshot tests:
tests/test_snapshot_plans.py keeps what otelize found (the plan), tests/test_snapshot_outputs.py
what it changed (the instrumented sources), in separate snapshot files (as ast-grep keeps
"what matched" apart from "what changed"). `pytest --snapshot-update` rewrites them; review the diff."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
APPS = sorted(str(p.parent.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*/package.json"))


def build_first(root: Path) -> None:
    """Turn the copy of a fixture at `root` into the variant whose start script builds first
    (`npm run build && node build/index.js`): the one line in which it differs, changed in place
    of keeping a second copy of the whole app."""
    import json

    pkg = root / "package.json"
    text = pkg.read_text()
    start = json.loads(text)["scripts"]["start"]
    line = f'"start": {json.dumps(start)}'
    assert text.count(line) == 1, line
    pkg.write_text(text.replace(line, f'"start": {json.dumps("npm run build && " + start)}'))


GLOBAL_FETCH_SERVICE = """\
// The greeting's name comes from an upstream service, through the global fetch of Node 18+
// (no import: undici inside node); without UPSTREAM_URL it greets as given.
export class GreetingService {
  async greet(name: string): Promise<string> {
    const upstream = process.env.UPSTREAM_URL;
    if (upstream === undefined) {
      return `hello ${name}`;
    }
    const res = await fetch(`${upstream}/names/${encodeURIComponent(name)}`);
    const body = (await res.json()) as { name: string };
    return `hello ${body.name}`;
  }
}

export const greetings = new GreetingService();
"""


def global_fetch(root: Path) -> None:
    """Turn the copy of a fixture at `root` into the variant whose GreetingService calls an
    upstream with the global fetch (its one service file rewritten)."""
    service = root / "src" / "services" / "greetingService.ts"
    assert "export class GreetingService" in service.read_text(), service
    service.write_text(GLOBAL_FETCH_SERVICE)


# fixture variants the tests derive from a fixture app: "<fixture>+<variant>"
VARIANTS = {"build-first": build_first, "global-fetch": global_fetch}
