"""End-to-end checks of sample-app's HTTP contract (the demo target of otelize)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from nodeutil import run_node_app

pytestmark = pytest.mark.node

APP_ENV = {"SIMULATED_LATENCY_MS": "0", "NODE_ENV": "test"}


class Client:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, payload = err.code, err.read()
        return status, (json.loads(payload) if payload else None)

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        return self.request("POST", path, body, raw)

    def available(self, product_id: str) -> int:
        status, body = self.get(f"/api/products/{product_id}/inventory")
        assert status == 200, body
        return int(body["available"])


def assert_error(status: int, body: Any, expected: int) -> None:
    assert status == expected, body
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)


def order(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "userId": "u1",
        "items": [{"productId": "p1", "quantity": 2}],
        "paymentToken": "tok_visa",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_http_contract(built_sample_app: Path) -> None:
    with run_node_app(built_sample_app, env=APP_ENV) as base_url:
        c = Client(base_url)

        # health + unknown route
        assert c.get("/health") == (200, {"status": "ok"})
        assert_error(*c.get("/api/does-not-exist"), 404)

        # users
        status, user = c.post("/api/users", {"name": "Alan Turing", "email": "alan@example.com"})
        assert status == 201, user
        assert set(user) >= {"id", "name", "email"}
        assert user["email"] == "alan@example.com"
        assert c.get(f"/api/users/{user['id']}") == (200, user)
        assert_error(*c.post("/api/users", {"name": "no email"}), 400)
        assert_error(*c.post("/api/users", {"name": "X", "email": "not-an-email"}), 400)
        assert_error(*c.post("/api/users", raw=b"{not json"), 400)
        assert_error(*c.post("/api/users", {"name": "Dup", "email": "alan@example.com"}), 409)
        status, u1 = c.get("/api/users/u1")
        assert status == 200 and u1["id"] == "u1"
        assert c.get("/api/users/u2")[0] == 200
        assert_error(*c.get("/api/users/u404"), 404)

        # products: search (cached on repeat), get, inventory
        status, first = c.get("/api/products?q=keyboard")
        assert status == 200 and isinstance(first, list) and len(first) >= 1
        assert all({"id", "name", "price"} <= set(p) for p in first)
        assert c.get("/api/products?q=keyboard") == (200, first)
        assert c.get("/api/products?q=zzz-nothing") == (200, [])
        status, everything = c.get("/api/products")
        assert status == 200 and [p["id"] for p in everything] == ["p1", "p2", "p3", "p4", "p5"]
        status, p1 = c.get("/api/products/p1")
        assert status == 200 and p1["id"] == "p1" and isinstance(p1["price"], (int, float))
        assert_error(*c.get("/api/products/p404"), 404)
        status, inv = c.get("/api/products/p1/inventory")
        assert status == 200
        assert set(inv) == {"productId", "available", "status"}
        assert inv["productId"] == "p1" and inv["available"] >= 100 and inv["status"] == "in_stock"
        assert c.get("/api/products/p3/inventory")[1]["status"] == "low_stock"
        assert c.get("/api/products/p5/inventory") == (200, {"productId": "p5", "available": 0, "status": "out_of_stock"})
        assert_error(*c.get("/api/products/p404/inventory"), 404)

        # orders: happy path reserves stock
        p1_before = c.available("p1")
        status, created = c.post("/api/orders", order())
        assert status == 201, created
        assert created["status"] == "confirmed"
        assert isinstance(created["id"], str)
        assert created["total"] == pytest.approx(2 * p1["price"])
        assert created["trackingNumber"].startswith("TRK-")
        assert c.available("p1") == p1_before - 2
        status, fetched = c.get(f"/api/orders/{created['id']}")
        assert status == 200
        assert {k: fetched[k] for k in ("id", "status", "total", "trackingNumber")} == {
            k: created[k] for k in ("id", "status", "total", "trackingNumber")
        }
        assert_error(*c.get("/api/orders/o404"), 404)

        # orders: every error row
        for bad in (
            {},
            order(userId=7),
            order(items=[]),
            order(items=[{"productId": "p1", "quantity": 0}]),
            order(items=[{"productId": "p1"}]),
            order(paymentToken=""),
        ):
            assert_error(*c.post("/api/orders", bad), 400)
        assert_error(*c.post("/api/orders", raw=b'{"userId":'), 400)
        assert_error(*c.post("/api/orders", order(userId="u404")), 404)
        assert_error(*c.post("/api/orders", order(items=[{"productId": "p404", "quantity": 1}])), 404)

        p1_before = c.available("p1")
        assert_error(
            *c.post("/api/orders", order(items=[{"productId": "p1", "quantity": 1}, {"productId": "p5", "quantity": 1}])),
            409,
        )
        assert c.available("p1") == p1_before  # partial reservation was released
        assert c.available("p5") == 0

        # declined payment releases every reserved item
        p1_before, p2_before = c.available("p1"), c.available("p2")
        assert_error(
            *c.post(
                "/api/orders",
                order(items=[{"productId": "p1", "quantity": 3}, {"productId": "p2", "quantity": 1}], paymentToken="tok_declined"),
            ),
            402,
        )
        assert c.available("p1") == p1_before
        assert c.available("p2") == p2_before

        # the app still works after all those failures
        status, second = c.post("/api/orders", order(userId="u2", items=[{"productId": "p2", "quantity": 1}]))
        assert status == 201 and second["id"] != created["id"]
        assert second["trackingNumber"] != created["trackingNumber"]

        # orders for a user: listed (and the same answer once cached), 400 without userId
        status, listed = c.get("/api/orders?userId=u1")
        assert status == 200 and isinstance(listed, list), listed
        assert all(o["userId"] == "u1" for o in listed)
        mine = {o["id"]: o for o in listed}
        assert created["id"] in mine and second["id"] not in mine
        assert mine[created["id"]]["status"] == "confirmed"
        assert mine[created["id"]]["trackingNumber"] == created["trackingNumber"]
        assert c.get("/api/orders?userId=u1") == (200, listed)
        assert_error(*c.get("/api/orders"), 400)
        assert_error(*c.get("/api/orders?userId="), 400)
        assert_error(*c.get("/api/orders?userId=u404"), 404)

        # tracking
        assert c.get(f"/api/orders/{created['id']}/tracking") == (
            200,
            {"orderId": created["id"], "trackingNumber": created["trackingNumber"], "status": "label_created"},
        )
        assert_error(*c.get("/api/orders/o404/tracking"), 404)

        # cancel: refunds, gives the stock back, 409 on repeat, 404 unknown
        p1_before = c.available("p1")
        status, to_cancel = c.post("/api/orders", order(items=[{"productId": "p1", "quantity": 5}]))
        assert status == 201, to_cancel
        assert c.available("p1") == p1_before - 5
        status, cancelled = c.post(f"/api/orders/{to_cancel['id']}/cancel")
        assert status == 200, cancelled
        assert cancelled["id"] == to_cancel["id"] and cancelled["status"] == "cancelled"
        assert cancelled["total"] == to_cancel["total"]
        assert c.available("p1") == p1_before
        assert c.get(f"/api/orders/{to_cancel['id']}")[1]["status"] == "cancelled"
        status, listed = c.get("/api/orders?userId=u1")
        assert {o["id"]: o["status"] for o in listed}[to_cancel["id"]] == "cancelled"  # cache was invalidated
        assert_error(*c.get(f"/api/orders/{to_cancel['id']}/tracking"), 404)
        assert_error(*c.post(f"/api/orders/{to_cancel['id']}/cancel"), 409)
        assert c.available("p1") == p1_before
        assert_error(*c.post("/api/orders/o404/cancel"), 404)
        # the first order is untouched
        assert c.get(f"/api/orders/{created['id']}")[1]["status"] == "confirmed"


def test_npm_test_passes(built_sample_app: Path) -> None:
    proc = subprocess.run(
        ["npm", "test"], cwd=built_sample_app, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"npm test failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
