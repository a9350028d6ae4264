"""Tenant isolation: many clients × many tenants with random scopes (seeded).

For every client, every (suite, corp) pair (plus ids that do not exist) and every
tenant-scoped route (enumerated from the URLconf, so a new route is covered or the
test fails): out of scope answers exactly the 404 a non-existent tenant gets, in
scope answers; lists and the event feed hold exactly the client's tenants; no token
of another tenant ever appears in any answer.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass
from dataclasses import field

import pytest

from api import urls as api_urls
from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import TenantEdition
from licensing.models import LicenseAccount
from licensing.models import LicenseOrder
from tenants.feed import feed_publish
from tenants.models import Authorization
from tests.api.conftest import NOT_FOUND
from tests.api.conftest import give_token
from tests.api.conftest import make_caller
from tests.tenants.factories import make_provider
from tests.tenants.factories import make_suite

SEEDS = [20240601, 7]
SUITES, CORPS, CLIENTS = 3, 5, 6
MISSING_SUITE, MISSING_CORP, MISSING_ORDER = "wwnosuchsuite", "wpnosuchcorp", "NOSUCHORDER"
ORDER_PARAMS = ("<wid:order_id>", "<wid:app_order_id>")
_counter = itertools.count()


@dataclass
class World:
    suites: list
    corps: list
    authorizations: dict  # (suite_pk, corp_pk) -> Authorization
    tokens: dict  # authorization pk -> token value
    orders: dict  # corp pk -> order_id
    app_orders: dict  # (suite pk, corp pk) -> app order_id (paid apps are per tenant)
    events: list  # FeedEvent
    callers: list = field(default_factory=list)
    scopes: dict = field(default_factory=dict)  # client name -> (suite pks, corp pks)


def build_world(rng: random.Random) -> World:
    run = next(_counter)
    provider = make_provider()
    suites = [make_suite(provider, suite_id=f"wwiso{run}s{i}") for i in range(SUITES)]
    from tenants.models import Corp

    corps = [Corp.objects.create(corpid=f"wpiso{run}c{i}", name=f"corp {i}") for i in range(CORPS)]
    authorizations, tokens = {}, {}
    for corp in corps:
        chosen = rng.sample(suites, rng.randint(1, SUITES))
        for suite in chosen:
            status = rng.choice(
                [Authorization.Status.ACTIVE] * 4
                + [Authorization.Status.SUSPENDED, Authorization.Status.CANCELLED]
            )
            authorization = Authorization(
                suite=suite, corp=corp, status=status, agent_id=1000000 + rng.randint(1, 99)
            )
            authorization.permanent_code = f"PERM-{suite.pk}-{corp.pk}"
            authorization.save()
            authorizations[(suite.pk, corp.pk)] = authorization
            if status == Authorization.Status.ACTIVE:
                tokens[authorization.pk] = f"TOKEN{run}x{authorization.pk}x{rng.getrandbits(40)}"
                give_token(authorization, tokens[authorization.pk])
    orders = {}
    for corp in corps:
        order_id = f"ORDER{run}c{corp.pk}"
        LicenseOrder.objects.create(order_id=order_id, corp=corp, order_type=1, status=0)
        orders[corp.pk] = order_id
        LicenseAccount.objects.create(corp=corp, active_code=f"CODE{run}c{corp.pk}", type=1)
    app_orders = {}
    for (suite_pk, corp_pk), authorization in authorizations.items():
        order_id = f"APP{run}s{suite_pk}c{corp_pk}"
        AppOrder.objects.create(
            order_id=order_id, suite=authorization.suite, corp=authorization.corp, status=1
        )
        app_orders[(suite_pk, corp_pk)] = order_id
        if rng.random() < 0.5:  # read editions for some tenants; the rest answer from tenants'
            TenantEdition.objects.create(
                authorization=authorization, edition_id=f"ED{suite_pk}", app_status=1
            )
    events = []
    for (suite_pk, corp_pk), authorization in authorizations.items():
        events.append(
            feed_publish(
                type="tenant.authorized",
                source_key=f"iso:{run}:{suite_pk}:{corp_pk}",
                suite=authorization.suite,
                corp=authorization.corp,
                data={"corpid": authorization.corp.corpid},
            )
        )
    for (suite_pk, corp_pk), authorization in authorizations.items():  # paid apps: both
        events.append(
            feed_publish(
                type="app_order.paid",
                source_key=f"iso:{run}:app:{suite_pk}:{corp_pk}",
                suite=authorization.suite,
                corp=authorization.corp,
                data={"order_id": app_orders[(suite_pk, corp_pk)]},
            )
        )
    for corp in corps:  # license events: a corp, no suite
        events.append(
            feed_publish(type="license.paid", source_key=f"iso:{run}:lic:{corp.pk}", corp=corp)
        )
    events.append(feed_publish(type="provider.something", source_key=f"iso:{run}:none"))
    world = World(suites, corps, authorizations, tokens, orders, app_orders, events)
    for i in range(CLIENTS):
        if i == 0:
            scope_suites, scope_corps = [], []  # fail-closed: sees nothing
        else:
            scope_suites = [s for s in suites if rng.random() < 0.3]
            scope_corps = [c for c in corps if rng.random() < 0.3]
        caller = make_caller(f"iso{run}-{i}", suites=scope_suites, corps=scope_corps)
        world.callers.append(caller)
        world.scopes[caller.client.name] = (
            {s.pk for s in scope_suites},
            {c.pk for c in scope_corps},
        )
    return world


def visible(world: World, caller, suite, corp) -> bool:
    suites, corps = world.scopes[caller.client.name]
    return (suite.pk, corp.pk) in world.authorizations and (suite.pk in suites or corp.pk in corps)


def tenant_routes() -> list[tuple[str, str, type]]:
    """Return (route template, method, view class) for every tenant-scoped route."""
    routes = []
    for pattern in api_urls.v1:
        route = str(pattern.pattern)
        if "<wid:corpid>" not in route:
            continue
        view = pattern.callback.view_class
        for method in ("get", "post", "put"):
            if hasattr(view, method):
                routes.append((route, method, view))
    return routes


def fill(route: str, suite_id: str, corpid: str, order_id: str) -> str:
    path = route.replace("<wid:suite_id>", suite_id).replace("<wid:corpid>", corpid)
    for param in ORDER_PARAMS:
        path = path.replace(param, order_id)
    path = path.replace("<wecompath:wecom_path>", "user/get")  # the WeCom gateway
    assert "<" not in path, path
    return "/api/v1/" + path


def call(caller, method: str, path: str):
    if method == "get":
        return caller.get(path)
    return getattr(caller, method)(path, {})


def all_pages(caller, path: str) -> list[dict]:
    results, url = [], path + "?limit=2"
    while url:
        response = caller.get(url)
        assert response.status_code == 200, (path, response.content)
        body = response.json()
        results.extend(body["results"])
        url = body["next"]
    return results


# Routes whose in-scope GET answers from the database alone (no WeCom call).
DB_ONLY_GETS = re.compile(r"(/corps/<wid:corpid>/|access-token/|orders/|accounts/|edition/)$")


def order_ids_for(world: World, route: str, suite, corp) -> tuple[list[str], str | None]:
    """Return (ids to try on ``route``, the tenant's own id among them or None)."""
    if "<wid:app_order_id>" in route:
        own = world.app_orders.get((suite.pk, corp.pk)) if suite and corp else None
        foreign = next(
            o
            for key, o in world.app_orders.items()
            if not suite or not corp or key != (suite.pk, corp.pk)
        )
        return [foreign, *([own] if own else [])], own
    if "<wid:order_id>" in route:
        own = world.orders[corp.pk] if corp is not None else None
        foreign = next(o for pk, o in world.orders.items() if corp is None or pk != corp.pk)
        return [foreign, *([own] if own else [])], own
    return [MISSING_ORDER], None


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.django_db
def test_isolation_matrix(settings, seed):
    # Any WeCom call goes to a closed port: a request that reached WeCom shows as 503.
    settings.WECOM_API_BASE = "http://127.0.0.1:9"
    rng = random.Random(seed)
    world = build_world(rng)
    routes = tenant_routes()
    assert len(routes) >= 14, routes
    all_tokens = set(world.tokens.values())
    checked = 0
    for caller in world.callers:
        bodies: list[str] = []
        suites_seen = {r["suite_id"] for r in all_pages(caller, "/api/v1/suites/")}
        expected_suites = {
            s.suite_id
            for s in world.suites
            if any(visible(world, caller, s, c) for c in world.corps)
        } | {s.suite_id for s in world.suites if s.pk in world.scopes[caller.client.name][0]}
        assert suites_seen == expected_suites, caller.client.name

        for suite in [*world.suites, None]:
            suite_id = suite.suite_id if suite else MISSING_SUITE
            corps_path = f"/api/v1/suites/{suite_id}/corps/"
            if suite is None or suite.suite_id not in expected_suites:
                response = caller.get(corps_path)
                assert response.status_code == 404
                assert response.json() == NOT_FOUND
            else:
                listed = all_pages(caller, corps_path)
                bodies.append(json.dumps(listed))
                assert {r["corpid"] for r in listed} == {
                    c.corpid for c in world.corps if visible(world, caller, suite, c)
                }
            for corp in [*world.corps, None]:
                corpid = corp.corpid if corp else MISSING_CORP
                in_scope = (
                    suite is not None and corp is not None and visible(world, caller, suite, corp)
                )
                for route, method, _view in routes:
                    order_ids, own = order_ids_for(world, route, suite, corp)
                    for order_id in order_ids:
                        path = fill(route, suite_id, corpid, order_id)
                        response = call(caller, method, path)
                        checked += 1
                        bodies.append(response.content.decode())
                        # Another tenant's order through this path must never be found.
                        names_order = any(p in route for p in ORDER_PARAMS)
                        if not in_scope or (names_order and order_id != own):
                            assert response.status_code == 404, (caller.client.name, method, path)
                            assert response.json() == NOT_FOUND
                            continue
                        assert response.status_code != 404, (caller.client.name, method, path)
                        if method == "get" and DB_ONLY_GETS.search(route):
                            authorization = world.authorizations[(suite.pk, corp.pk)]
                            if route.endswith("access-token/") and not authorization.is_active:
                                assert response.status_code == 409
                                continue
                            assert response.status_code == 200, (path, response.content)
                            if route.endswith("access-token/"):
                                token = response.json()["access_token"]
                                assert token == world.tokens[authorization.pk]
        # The feed: exactly the events of the client's tenants.
        events, after = [], 0
        while True:
            page = caller.get("/api/v1/events/", {"after": after, "limit": 3}).json()
            events.extend(page["results"])
            after = int(page["next_cursor"])
            if not page["has_more"]:
                break
        bodies.append(json.dumps(events))
        scope_suites, scope_corps = world.scopes[caller.client.name]
        corps_of_suites = {c for (s, c) in world.authorizations if s in scope_suites}
        expected_events = {
            e.pk
            for e in world.events
            if (e.suite_id in scope_suites)
            or (e.corp_id in scope_corps)
            or (e.suite_id is None and e.corp_id in corps_of_suites)
        }
        assert [e["id"] for e in events] == sorted(expected_events)
        # No answer to this client carries a token it may not read.
        readable = {
            world.tokens[a.pk]
            for (s, c), a in world.authorizations.items()
            if a.pk in world.tokens and (s in scope_suites or c in scope_corps)
        }
        text = "\n".join(bodies)
        leaked = [t for t in all_tokens - readable if t in text]
        assert not leaked, caller.client.name
        invisible_corps = {
            c.corpid
            for c in world.corps
            if not any(visible(world, caller, s, c) for s in world.suites)
        }
        assert not [c for c in invisible_corps if f'"{c}"' in text], caller.client.name
    assert checked > 1500


@pytest.mark.django_db
def test_suite_level_actions_need_the_whole_suite(settings):
    settings.WECOM_API_BASE = "http://127.0.0.1:9"
    world = build_world(random.Random(3))
    suite = world.suites[0]
    corp = next(c for c in world.corps if (suite.pk, c.pk) in world.authorizations)
    by_corp = make_caller("by-corp", corps=[corp])
    whole = make_caller("whole", suites=[suite])
    nobody = make_caller("nobody")
    path = f"/api/v1/suites/{suite.suite_id}/install-links/"
    assert by_corp.post(path).status_code == 403
    assert by_corp.post(path).json()["error"]["code"] == "permission_denied"
    assert nobody.post(path).json() == NOT_FOUND
    assert whole.post(path).status_code == 503  # reached WeCom (a closed port here)
    assert nobody.post("/api/v1/login/qr/", {"auth_code": "x"}).json() == NOT_FOUND
    assert nobody.post(f"/api/v1/suites/{suite.suite_id}/oauth/user/", {"code": "x"}).json() == (
        NOT_FOUND
    )


@pytest.mark.django_db
def test_revoked_scope_takes_effect_on_the_next_request():
    world = build_world(random.Random(5))
    authorization = next(a for a in world.authorizations.values() if a.is_active)
    caller = make_caller("scoped", corps=[authorization.corp])
    path = (
        f"/api/v1/suites/{authorization.suite.suite_id}/corps/{authorization.corp.corpid}/"
        "access-token/"
    )
    assert caller.get(path).status_code == 200
    caller.client.corps.clear()
    assert caller.get(path).json() == NOT_FOUND  # no cached scope to wait for
