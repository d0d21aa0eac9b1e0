"""The library: `otelize.analyze/instrument/strip/verify` exported lazily; settings are one
validated object, and a library caller gets the CLI's errors; exit codes on the results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import otelize
from otelize.errors import EXIT_CHANGES, EXIT_OK, EXIT_PARTIAL, BadInput
from otelize.project.settings import Settings, coerce_settings, load_settings, parse_settings
from test_settings import app  # noqa: F401  (the sample app, copied)

# --- settings through the library ---------------------------------------------------------


def test_a_mapping_with_config_keys_is_honoured(app: Path) -> None:
    # before: `workers:` in a library mapping was silently ignored (only disabled_workers was read)
    result = otelize.instrument(app, write=False, settings={"workers": {"cache": False}, "categories": {"service": False}})
    workers = {s.worker for s in result.synthesis.spans}
    assert "cache" not in workers and "service" not in workers and "database" in workers


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"span_naming": "bogus"}, "settings: key `span_naming`: must be one of class.method, method, file.class.method"),
        ({"workers": {"cahce": False}}, "settings: key `workers.cahce`: unknown worker (did you mean `cache`?)"),
        ({"workers": {"cache": "no"}}, "settings: key `workers.cache`: must be true or false"),
        ({"disabled_workers": ["cahce"]}, "settings: key `disabled_workers.cahce`: unknown worker (did you mean `cache`?)"),
        ({"protcol": "grpc"}, "settings: key `protcol`: unknown key (did you mean `protocol`?)"),
        ({"jobs": 0}, "settings: key `jobs`: must be a positive integer"),
        (["span_naming"], "settings: must be an otelize.project.settings.Settings or a mapping, not list"),
    ],
)
def test_a_bad_mapping_gets_the_cli_error(app: Path, settings: object, message: str) -> None:
    with pytest.raises(BadInput) as err:
        otelize.analyze(app, settings=settings)  # type: ignore[arg-type]
    assert str(err.value) == message


def test_the_config_file_and_the_library_say_the_same() -> None:
    data = {"span_naming": "bogus"}
    with pytest.raises(BadInput) as from_file:
        parse_settings(data, ".otelize.yaml", Path("."))
    with pytest.raises(BadInput) as from_api:
        coerce_settings(data)
    assert str(from_file.value).replace(".otelize.yaml", "settings") == str(from_api.value)


def test_to_api_round_trips(app: Path) -> None:
    (app / ".otelize.yaml").write_text(
        "service_name: edge\nprotocol: grpc\nexclude: [src/utils/**]\nworkers: {cache: false}\n"
        "categories: {middleware: false}\nspan_naming: method\n"
    )
    s = load_settings(app)
    assert coerce_settings(s.to_api()) == Settings(**{**s.__dict__, "source": None})
    assert coerce_settings(s) is s


def test_a_settings_object_and_its_mapping_plan_the_same(app: Path) -> None:
    s = Settings(span_naming="method", workers={"cache": False})
    by_object = otelize.analyze(app, settings=s)
    by_mapping = otelize.analyze(app, settings={"span_naming": "method", "workers": {"cache": False}})
    assert by_object.settings == by_mapping.settings == s
    assert [t.id for t in by_object.tasks] == [t.id for t in by_mapping.tasks]
    assert not any(t.worker == "cache" for t in by_object.tasks)


# --- lazy exports ---------------------------------------------------------------------------


def test_import_otelize_loads_nothing_else() -> None:
    code = "import sys, otelize; print(json.dumps(sorted(m for m in sys.modules if m.startswith('otelize'))))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["otelize"]


def test_exports_are_the_api_functions() -> None:
    from otelize import api

    assert otelize.analyze is api.analyze and otelize.instrument is api.instrument
    assert set(otelize.__all__) == {"Settings", "analyze", "instrument", "strip", "verify"}
    with pytest.raises(AttributeError):
        otelize.nothing_here  # noqa: B018


def test_strip_and_verify_stay_the_functions_after_their_modules_are_imported(app: Path) -> None:
    # the stage packages are otelize.stripping and otelize.verification: importing them binds
    # nothing over the exported otelize.strip / otelize.verify
    code = (
        "import otelize.stripping.strip, otelize.verification.verify, otelize, sys, types\n"
        "from otelize import strip, verify\n"
        "assert isinstance(otelize.strip, types.FunctionType) and otelize.strip is strip\n"
        "assert isinstance(otelize.verify, types.FunctionType) and otelize.verify is verify\n"
        f"r = otelize.strip({str(app)!r}, write=False)\n"
        "print(r.exit_code(check=True))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(EXIT_OK)  # a pristine app has nothing to strip


# --- the exit-code rule on the results ------------------------------------------------------


def test_exit_codes_on_the_results(app: Path) -> None:
    pending = otelize.instrument(app, write=False)
    assert pending.changed and pending.exit_code() == EXIT_OK and pending.exit_code(check=True) == EXIT_CHANGES
    otelize.instrument(app)
    assert otelize.instrument(app, write=False).exit_code(check=True) == EXIT_OK
    assert otelize.strip(app, write=False).exit_code(check=True) == EXIT_CHANGES
    (app / "src" / "broken.ts").write_text("export function (\n")
    assert otelize.instrument(app, write=False).exit_code(check=True) == EXIT_PARTIAL
