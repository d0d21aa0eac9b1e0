"""The worker registry (otelize.plan.registry) is the one declaration of the workers; a worker
cannot be half-wired: each entry has its module, its rules and their tests, its colours,
its helpers in otel.ts; and a rule, a worker module or a helper outside the registry fails."""

from __future__ import annotations

import importlib
import re
from dataclasses import replace
from pathlib import Path

import pytest

from otelize.plan import registry
from otelize.errors import BadInput, RuleError
from otelize.plan.registry import CATEGORIES, REGISTRY, Category, Helper, Worker, check_registry
from otelize.classify.ruleset import load_rules, parse_rule
from otelize.project.settings import parse_settings
from otelize.workers import config

WORKERS_DIR = Path(importlib.import_module("otelize.workers").__file__).parent
NOT_WORKERS = {"__init__", "base", "eligibility", "placement", "spans"}  # shared machinery, not workers
RULE_TESTS = Path(__file__).resolve().parent / "rules"
RULES = load_rules()


@pytest.mark.parametrize("worker", REGISTRY, ids=lambda w: w.name)
def test_every_entry_has_its_module(worker: Worker) -> None:
    module = importlib.import_module(worker.module)
    assert callable(getattr(module, "run", None)), f"{worker.module} has no run(ctx, task)"


def test_every_worker_module_is_registered() -> None:
    modules = {f"otelize.workers.{p.stem}" for p in WORKERS_DIR.glob("*.py") if p.stem not in NOT_WORKERS}
    assert modules == {w.module for w in REGISTRY}, "a worker module without a registry entry (or the reverse)"


@pytest.mark.parametrize("category", [c for w in REGISTRY for c in w.category_names], ids=str)
def test_every_category_has_a_rule_and_a_rule_test(category: str) -> None:
    rules = [r for r in RULES.rules if r.category == category]
    assert rules, f"no enabled rule in rules/ classifies files as {category}"
    tested = {p.stem for p in RULE_TESTS.glob("*.yaml")}
    assert {r.id for r in rules} <= tested, f"rules without a test in tests/rules/: {sorted({r.id for r in rules} - tested)}"


def test_a_rule_category_without_a_registry_entry_fails_at_load() -> None:
    with pytest.raises(RuleError) as err:
        parse_rule({"id": "mail", "category": "mailer", "match": {"name": "Mail"}}, "my-rules/mail.yaml")
    assert str(err.value) == (
        "my-rules/mail.yaml: key `category`: must be one of " + ", ".join(CATEGORIES)
        + " (no worker in otelize.plan.registry serves `mailer`)"
    )


def test_every_rule_category_is_served() -> None:
    served = {c for w in REGISTRY for c in w.category_names} | {"other"}
    assert {r.category for r in RULES.all_rules} <= served


def test_colours_cover_every_category() -> None:
    # `otelize graph` looks every classified module's category up here
    assert set(registry.COLORS) == set(CATEGORIES) | {"route"}
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in registry.COLORS.values())


def test_otel_ts_exports_exactly_the_registry_helpers() -> None:
    # a helper otel.ts exports but wrap/strip do not know would be wrapped again, or
    # have otel.ts deleted under it by strip
    exported = set(re.findall(rb"^export function (\w+)", config.render_helper(), re.M))
    assert exported == {h.name.encode() for h in registry.ALL_HELPERS}


def test_settings_accept_every_worker_and_category() -> None:
    s = parse_settings({"workers": {w.name: False for w in REGISTRY}, "categories": {c: False for c in CATEGORIES}}, "x", Path("."))
    assert s.disabled_workers == sorted(w.name for w in REGISTRY)
    with pytest.raises(BadInput, match="unknown worker"):
        parse_settings({"workers": {"mailer": False}}, "x", Path("."))


def test_plan_order_and_routing_come_from_the_registry() -> None:
    from otelize.plan import dag as plan

    assert plan.WORKERS == tuple(w.name for w in REGISTRY)
    assert set(plan.CATEGORY_WORKER.values()) == {w.name for w in REGISTRY if w.targets == registry.FILES}


SERVICE = next(w for w in REGISTRY if w.name == "service")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ((SERVICE, SERVICE), "`service`: declared twice"),
        ((replace(SERVICE, categories=()),), "`service`: a per-file worker must serve at least one category"),
        ((SERVICE, replace(SERVICE, name="queue")), "`queue`: category `service` is already served by `service`"),
        ((replace(SERVICE, categories=(Category("other", "#ffffff"),)),), "category `other` is already served"),
        ((replace(SERVICE, module="mypkg.service"),), "`service`: module must be under otelize.workers"),
        ((replace(SERVICE, targets="everything"),), "`service`: targets must be one of"),
        ((replace(SERVICE, main_process=True),), "only project- and entry-wide workers run in the main process"),
        ((replace(SERVICE, helpers=(Helper("withSpan", "SIDEWAYS"),)),), "helper `withSpan` has unknown span kind SIDEWAYS"),
        (
            (SERVICE, replace(SERVICE, name="queue", categories=(Category("queue", "#000000"),), helpers=(Helper("withSpan", "CLIENT"),))),
            "helper `withSpan` is declared twice with different kinds",
        ),
    ],
)
def test_check_registry_refuses_a_half_wired_entry(bad: tuple[Worker, ...], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_registry(bad)

