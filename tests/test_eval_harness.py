"""The evaluation harness (tests/eval) scores what it should, on a synthetic checkout."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from tests.eval.expect import AppSpec, ExpectationError, Pattern, RouteWant, Want, load
from tests.eval.run import Observed, Span, evaluate, instrumented_libraries, main, score

COMMIT = "0" * 40


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, body in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(body).lstrip(), "utf-8")


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "apps" / "shop"
    _write(root, {
        "package.json": json.dumps({"name": "shop", "dependencies": {"express": "4.19.2", "pg": "8.11.0"}}),
        "tsconfig.json": "{}",
        "src/index.ts": """
            import express from 'express';
            import { router } from './routes';
            const app = express();
            app.use('/api', router);
            app.listen(3000);
        """,
        "src/routes.ts": """
            import { Router } from 'express';
            import { OrderService } from './services/orderService';
            export const router = Router();
            const orders = new OrderService();
            router.get('/orders/:id', async (req, res) => { res.json(await orders.getOrder(req.params.id)); });
        """,
        "src/services/orderService.ts": """
            export class OrderService {
              async getOrder(id: string): Promise<unknown> {
                const found = await Promise.resolve({ id });
                return found;
              }
            }
        """,
    })
    return root


def test_scores_a_real_run_and_writes_nothing(checkout: Path) -> None:
    before = _tree_digest(checkout)
    spec = AppSpec(
        "shop", f"o/shop@{COMMIT}",
        want=[Want("src/services/orderService.ts", "OrderService.getOrder", "INTERNAL"),
              Want("src/services/orderService.ts", "OrderService.cancelOrder")],
        routes=[RouteWant("GET", "/api/orders/:id", "src/routes.ts", "<anonymous>"),
                RouteWant("DELETE", "/api/orders/:id", "src/routes.ts", "<anonymous>")],
    )
    res = evaluate(checkout, spec)
    assert _tree_digest(checkout) == before
    assert (res.hit, res.wanted) == (1, 2)
    assert res.missed == ["src/services/orderService.ts::OrderService.cancelOrder"]
    assert res.kind_mismatches == []
    assert (res.routes_found, res.routes_expected) == (1, 2)
    assert res.missing_routes == ["DELETE /api/orders/:id (src/routes.ts::<anonymous>)"]
    assert res.tracing == "yes (src/index.ts)"


def test_messaging_spans_count_like_any_other(checkout: Path) -> None:
    """PRODUCER and CONSUMER spans are otelize's as much as INTERNAL ones: wanted, they are
    hits (their kind checked); unlisted, they count against precision."""
    pkg = json.loads((checkout / "package.json").read_text())
    pkg["dependencies"]["bullmq"] = "5.12.0"
    (checkout / "package.json").write_text(json.dumps(pkg))
    _write(checkout, {
        "src/queues/mail.ts": """
            import { Queue, Worker } from 'bullmq';
            const mail = new Queue('mail');
            export async function enqueueMail(to: string): Promise<void> {
              await mail.add('send', { to });
            }
            export const worker = new Worker('mail', async (job) => { console.log(job.id); });
        """,
    })
    spec = AppSpec("shop", f"o/shop@{COMMIT}", want=[
        Want("src/services/orderService.ts", "OrderService.getOrder", "INTERNAL"),
        Want("src/queues/mail.ts", "enqueueMail", "PRODUCER"),
    ])
    res = evaluate(checkout, spec)
    assert (res.hit, res.wanted) == (2, 2)
    assert res.kind_mismatches == []
    assert res.unexpected == ["src/queues/mail.ts::mail.processor [CONSUMER]"]
    assert (res.correct, res.counted) == (2, 3)


def _obs(*spans: Span, calls: dict[str, set[str]] | None = None, io: set[str] = frozenset()) -> Observed:
    nodes = {s.node: s.file for s in spans}
    return Observed(list(spans), calls or {}, nodes, set(io), set(), "yes")


def _span(file: str, symbol: str, kind: str = "INTERNAL", name: str | None = None) -> Span:
    return Span(name or symbol, file, symbol, kind, f"sym:{file}::{symbol}")


def test_precision_must_not_ok_and_test_code() -> None:
    spec = AppSpec(
        "a", f"o/a@{COMMIT}",
        want=[Want("src/a.service.ts", "A.run", "INTERNAL")],
        ok=[Pattern("src/util/*.ts")],
        must_not=[Pattern("src/**/*.controller.ts", why="express traces it")],
    )
    res = score(spec, _obs(
        _span("src/a.service.ts", "A.run", "CLIENT"),
        _span("src/util/x.ts", "helper"),
        _span("src/users/users.controller.ts", "UsersController.list"),
        _span("tests/fakes/fakeA.ts", "FakeA.run"),
    ))
    assert (res.hit, res.wanted) == (1, 1)
    assert (res.correct, res.counted) == (1, 3)  # the `ok` span is counted neither way
    assert res.kind_mismatches == ["src/a.service.ts::A.run is CLIENT, want INTERNAL"]
    assert res.must_not_hits == ["src/users/users.controller.ts::UsersController.list (express traces it)"]
    assert res.test_spans == ["tests/fakes/fakeA.ts::FakeA.run"]


def test_client_over_client_through_the_graph_and_over_instrumented_drivers() -> None:
    outer = _span("src/repo.ts", "Repo.save", "CLIENT")
    inner = _span("src/repo.ts", "Repo.exists", "CLIENT")
    over_driver = _span("src/pgRepo.ts", "PgRepo.find", "CLIENT")
    fine = _span("src/simulated.ts", "Db.get", "CLIENT")
    helper = "sym:src/pgHelpers.ts::run"
    obs = _obs(outer, inner, over_driver, fine, calls={outer.node: {inner.node}, over_driver.node: {helper}}, io={"src/pgHelpers.ts"})
    obs.node_files[helper] = "src/pgHelpers.ts"
    res = score(AppSpec("a", f"o/a@{COMMIT}"), obs)
    assert res.client_over_client == [
        "src/pgRepo.ts::PgRepo.find over an auto-instrumented client (src/pgHelpers.ts)",
        "src/repo.ts::Repo.save over CLIENT Repo.exists",
    ]


def test_instrumented_libraries_include_orms_only_over_a_driver() -> None:
    assert instrumented_libraries({"dependencies": {"typeorm": "1", "pg": "1"}}) == {"typeorm", "pg"}
    assert instrumented_libraries({"dependencies": {"@prisma/client": "1"}}) == set()
    assert instrumented_libraries({"dependencies": {"typeorm": "1", "sqlite3": "1"}}) == set()


@pytest.mark.parametrize("body, message", [
    ("repo: o/a@abc\n", "key `repo`"),
    (f"repo: o/a@{COMMIT}\nwnat: []\n", "unknown key `wnat`"),
    (f"repo: o/a@{COMMIT}\nwant: [{{file: a.ts}}]\n", "missing key `symbol`"),
    (f"repo: o/a@{COMMIT}\nwant: [{{file: a.ts, symbol: A.b, kind: SERVER}}]\n", "kind must be one of"),
    (f"repo: o/a@{COMMIT}\nwant: [{{file: a.ts, symbol: A.b}}]\nmust_not: [{{file: '*.ts'}}]\n", "both wanted and in `must_not`"),
    (f"repo: o/a@{COMMIT}\nroutes: [{{method: FETCH, path: /, file: a.ts, symbol: x}}]\n", "unknown method"),
])
def test_bad_expectation_files_name_the_key(tmp_path: Path, body: str, message: str) -> None:
    p = tmp_path / "a.yaml"
    p.write_text(body, "utf-8")
    with pytest.raises(ExpectationError, match=message):
        load(p)


def test_every_shipped_expectation_file_loads() -> None:
    from tests.eval.run import load_specs

    for spec in load_specs():
        assert spec.want or spec.must_not, f"{spec.name}: neither wanted spans nor must-not entries"


def test_cli_prints_a_row_and_skips_missing_checkouts(checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--apps", str(checkout.parent.parent / "nowhere")]) == 0
    out, err = capsys.readouterr()
    assert "no checkout at" in err or err == ""


def test_duplicate_span_names() -> None:
    res = score(AppSpec("a", f"o/a@{COMMIT}"), _obs(
        _span("src/a/CourseCreator.ts", "CourseCreator.run"),
        _span("src/b/CourseCreator.ts", "CourseCreator.run"),
        _span("src/b/CourseCreator.ts", "CourseCreator.undo"),
    ))
    assert res.duplicate_names == ["CourseCreator.run: src/a/CourseCreator.ts::CourseCreator.run, src/b/CourseCreator.ts::CourseCreator.run"]
