"""Settings: `.otelize.yaml` at the app's root, overridden by CLI flags.

```yaml
service_name: shop-api          # default: package.json "name"
protocol: grpc                  # http/protobuf (default) | grpc | console
include: ["src/**"]             # .gitignore-style globs; only these source files
exclude: ["src/legacy/**"]      # never these (not analysed, not edited)
workers: {cache: false}         # turn a worker off (or back on)
categories: {middleware: false} # files of this category get no spans
span_naming: class.method       # class.method (default) | method | file.class.method
rules: [otelize-rules]          # extra rule folders, relative to this file
include_code: [tests]           # trace code excluded by default (see EXCLUDABLE)
express_layers: false           # true: a span per Express middleware and router layer too
force_toolchain: false          # true: add OpenTelemetry packages to a toolchain no line supports
```

Every error is one line naming the file and the key; an unknown key gets a
"did you mean" suggestion. `Settings` is the one validated object that
`otelize.api` and the workers read (`ctx.settings`). A library caller may pass
a mapping instead: `coerce_settings` validates it with the same rules and
messages (the keys above, plus `disabled_workers`, `disabled_categories` and
`jobs`, the form `Settings.to_api()` writes).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import pathspec

from otelize.errors import BadInput
from otelize.plan.registry import CATEGORIES, WORKERS

CONFIG_FILE = ".otelize.yaml"
PROTOCOLS = ("http/protobuf", "grpc", "console")
SPAN_NAMING = ("class.method", "method", "file.class.method")
KEYS = (
    "service_name", "protocol", "include", "exclude", "workers", "categories", "span_naming", "rules",
    "include_code", "express_layers", "force_toolchain",
)
API_KEYS = KEYS + ("disabled_workers", "disabled_categories", "disabled_rules", "enabled_rules", "jobs")  # a library caller's mapping
API_SOURCE = "settings"  # how errors name a library caller's mapping
# Code that gets no spans unless `include_code` names it (otelize.classify.exclusions): test code,
# migrations, seeders, scripts/, decorator factories, functions called at module load,
# files of another package (a folder with its own package.json), and pure helpers
# (synchronous functions of a span file that reach no I/O).
EXCLUDABLE = ("tests", "migrations", "seeders", "scripts", "decorator-factories", "browser", "module-load", "nested-packages",
              "pure-helpers")


@dataclass(frozen=True)
class Settings:
    service_name: str | None = None
    protocol: str = "http/protobuf"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    workers: dict[str, bool] = field(default_factory=dict)  # name -> enabled; absent = enabled
    categories: dict[str, bool] = field(default_factory=dict)
    span_naming: str = "class.method"
    rules: tuple[Path, ...] = ()  # absolute (config rules are relative to the config file)
    include_code: tuple[str, ...] = ()  # EXCLUDABLE kinds traced anyway
    express_layers: bool = False  # Express middleware/router layer spans (off: request handlers only)
    force_toolchain: bool = False  # otelize.workers.deps.choose.choose_line: no refusal
    rule_switches: dict[str, bool] = field(default_factory=dict)  # rule id -> on/off (--enable/--disable RULE_ID)
    jobs: int | None = None  # processes for the per-file work (library only; default: by project size)
    source: str | None = None  # the config file that was read, for messages

    @property
    def disabled_workers(self) -> list[str]:
        return sorted(w for w, on in self.workers.items() if not on)

    @property
    def disabled_categories(self) -> list[str]:
        return sorted(c for c, on in self.categories.items() if not on)

    def to_api(self) -> dict[str, Any]:
        """The `settings` dict of `otelize.api.analyze` / `instrument`."""
        out: dict[str, Any] = {"protocol": self.protocol, "span_naming": self.span_naming}
        if self.service_name:
            out["service_name"] = self.service_name
        if self.include:
            out["include"] = list(self.include)
        if self.exclude:
            out["exclude"] = list(self.exclude)
        if self.disabled_workers:
            out["disabled_workers"] = self.disabled_workers
        if self.disabled_categories:
            out["disabled_categories"] = self.disabled_categories
        if self.rules:
            out["rules"] = [str(p) for p in self.rules]
        if self.include_code:
            out["include_code"] = list(self.include_code)
        if self.express_layers:
            out["express_layers"] = True
        if self.force_toolchain:
            out["force_toolchain"] = True
        for key, on in (("disabled_rules", False), ("enabled_rules", True)):
            ids = sorted(r for r, state in self.rule_switches.items() if state is on)
            if ids:
                out[key] = ids
        return out


def _err(source: str, key: str, msg: str) -> BadInput:
    return BadInput(f"{source}: key `{key}`: {msg}")


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean `{close[0]}`?)" if close else f" (allowed: {', '.join(choices)})"


def _globs(source: str, key: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(g, str) and g.strip() for g in items):
        raise _err(source, key, "must be a glob or a list of globs")
    try:
        pathspec.GitIgnoreSpec.from_lines(items)
    except Exception as exc:  # pathspec raises GitWildMatchPatternError
        raise _err(source, key, f"invalid glob: {exc}") from None
    return tuple(items)


def _toggles(source: str, key: str, value: Any, names: tuple[str, ...], what: str) -> dict[str, bool]:
    if not isinstance(value, dict):
        raise _err(source, key, f"must be a mapping of {what} name to true/false")
    out = {}
    for name, on in value.items():
        if name not in names:
            raise _err(source, f"{key}.{name}", f"unknown {what}{_suggest(str(name), names)}")
        if not isinstance(on, bool):
            raise _err(source, f"{key}.{name}", "must be true or false")
        out[str(name)] = on
    return out


def coerce_settings(value: Settings | Mapping[str, Any]) -> Settings:
    """A library caller's settings, validated as a config file is (errors name `settings`):
    a Settings as is, or a mapping of the config keys (or of `to_api()`'s)."""
    if isinstance(value, Settings):
        return value
    if not isinstance(value, Mapping):
        raise BadInput(f"{API_SOURCE}: must be an otelize.project.settings.Settings or a mapping, not {type(value).__name__}")
    return replace(parse_settings(dict(value), API_SOURCE, Path.cwd(), keys=API_KEYS), source=None)


def parse_settings(data: Any, source: str, base: Path, keys: tuple[str, ...] = KEYS) -> Settings:
    """Validate a config mapping. `base` is the folder relative `rules:` paths start from."""
    if data is None:
        return Settings(source=source)
    if not isinstance(data, dict):
        raise BadInput(f"{source}: the top level must be a mapping of settings")
    for key in data:
        if key not in keys:
            raise _err(source, str(key), f"unknown key{_suggest(str(key), keys)}")
    s = Settings(source=source)
    if "service_name" in data:
        name = data["service_name"]
        if not isinstance(name, str) or not name.strip():
            raise _err(source, "service_name", "must be a non-empty string")
        s = replace(s, service_name=name)
    if "protocol" in data:
        if data["protocol"] not in PROTOCOLS:
            raise _err(source, "protocol", f"must be one of {', '.join(PROTOCOLS)}")
        s = replace(s, protocol=data["protocol"])
    if "span_naming" in data:
        if data["span_naming"] not in SPAN_NAMING:
            raise _err(source, "span_naming", f"must be one of {', '.join(SPAN_NAMING)}")
        s = replace(s, span_naming=data["span_naming"])
    for key in ("express_layers", "force_toolchain"):
        if key in data:
            if not isinstance(data[key], bool):
                raise _err(source, key, "must be true or false")
            s = replace(s, **{key: data[key]})
    for key in ("include", "exclude"):
        if key in data:
            s = replace(s, **{key: _globs(source, key, data[key])})
    if "include_code" in data:
        kinds = data["include_code"]
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise _err(source, "include_code", f"must be a list of: {', '.join(EXCLUDABLE)}")
        for k in kinds:
            if k not in EXCLUDABLE:
                raise _err(source, f"include_code.{k}", f"unknown kind of code{_suggest(k, EXCLUDABLE)}")
        s = replace(s, include_code=tuple(sorted(set(kinds))))
    if "workers" in data:
        s = replace(s, workers=_toggles(source, "workers", data["workers"], WORKERS, "worker"))
    if "categories" in data:
        s = replace(s, categories=_toggles(source, "categories", data["categories"], CATEGORIES, "category"))
    for key, names, what, field_name in (("disabled_workers", WORKERS, "worker", "workers"),
                                         ("disabled_categories", CATEGORIES, "category", "categories")):
        if key in data:
            off = data[key]
            if not isinstance(off, (list, tuple)) or not all(isinstance(n, str) for n in off):
                raise _err(source, key, f"must be a list of {what} names")
            toggles = _toggles(source, key, {n: False for n in off}, names, what)
            s = replace(s, **{field_name: {**getattr(s, field_name), **toggles}})
    for key, on in (("disabled_rules", False), ("enabled_rules", True)):
        if key in data:  # rule ids: checked against the rules when they load (otelize.classify.ruleset.load_rules)
            ids = data[key]
            if not isinstance(ids, (list, tuple)) or not all(isinstance(n, str) for n in ids):
                raise _err(source, key, "must be a list of rule ids")
            s = replace(s, rule_switches={**s.rule_switches, **{n: on for n in ids}})
    if "jobs" in data and data["jobs"] is not None:
        jobs = data["jobs"]
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            raise _err(source, "jobs", "must be a positive integer")
        s = replace(s, jobs=jobs)
    if "rules" in data:
        dirs = data["rules"]
        dirs = [dirs] if isinstance(dirs, str) else dirs
        dirs = [str(d) if isinstance(d, Path) else d for d in dirs] if isinstance(dirs, (list, tuple)) else dirs
        if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
            raise _err(source, "rules", "must be a folder or a list of folders")
        paths = []
        for i, d in enumerate(dirs):
            path = (base / d).resolve()
            if not path.is_dir():
                raise _err(source, f"rules[{i}]", f"no such folder: {d}")
            paths.append(path)
        s = replace(s, rules=tuple(paths))
    return s


def resolve_settings(root: str | Path, settings: Settings | Mapping[str, Any] | None) -> Settings:
    """A run's settings: the app's .otelize.yaml when none are given (the library honours
    it too), else the caller's, validated with the CLI's rules and messages."""
    return load_settings(root) if settings is None else coerce_settings(settings)


def load_settings(root: str | Path, config: str | Path | None = None) -> Settings:
    """`config` if given (it must exist), else `<root>/.otelize.yaml` if present, else defaults."""
    if config is not None:
        path, source = Path(config), str(config)
        if not path.is_file():
            raise BadInput(f"{config}: no such config file")
    else:
        path, source = Path(root) / CONFIG_FILE, CONFIG_FILE
        if path.is_dir():
            raise BadInput(f"{(Path(root) / CONFIG_FILE).as_posix()}: is a folder, not a settings file")
        if not path.is_file():
            return Settings()
    from otelize.project import yamlio  # PyYAML only when there is a file to read

    return parse_settings(yamlio.load_file(path, source, BadInput), source, path.parent.resolve())


def with_flags(
    s: Settings,
    *,
    service_name: str | None = None,
    protocol: str | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    enable: tuple[str, ...] = (),
    disable: tuple[str, ...] = (),
    span_naming: str | None = None,
    force_toolchain: bool = False,
) -> Settings:
    """Command-line flags over the config file: a flag that is given wins.

    `--include`/`--exclude` replace the config's list; `--enable`/`--disable`
    name a worker or a category (a name that is both means both), or else a
    rule id, which is checked when the rules load.
    """
    if service_name is not None:
        s = replace(s, service_name=service_name)
    if protocol is not None:
        s = replace(s, protocol=protocol)
    if span_naming is not None:
        s = replace(s, span_naming=span_naming)
    if force_toolchain:
        s = replace(s, force_toolchain=True)
    if include:
        s = replace(s, include=_globs("--include", "include", list(include)))
    if exclude:
        s = replace(s, exclude=_globs("--exclude", "exclude", list(exclude)))
    workers, categories, switches = dict(s.workers), dict(s.categories), dict(s.rule_switches)
    for names, on in ((enable, True), (disable, False)):
        for name in names:
            if name not in WORKERS and name not in CATEGORIES:
                switches[name] = on  # a rule id, or a mistake that load_rules names with a suggestion
            if name in WORKERS:
                workers[name] = on
            if name in CATEGORIES:
                categories[name] = on
    return replace(s, workers=workers, categories=categories, rule_switches=switches)
