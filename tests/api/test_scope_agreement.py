"""The tenant scope is one rule with two renderings, and they agree (issue 18).

api/selectors.py builds the ORM filter (every list and detail view) and the hot path's
SQL (the key lookup that authenticates each request, the token endpoint) from one table,
SCOPE_LINKS. On random worlds of suites, corps, authorizations and clients (seeded, so a
failure replays), every client × tenant pair gets the same answer from the ORM, from the
SQL of authorization_visible, from the SQL folded into api_key_lookup, and from the rule
written out here.
"""

from __future__ import annotations

import random

import pytest

from api import selectors
from api import services as api_services
from api.keys import key_prefix_of
from tenants.models import Authorization
from tenants.models import Corp
from tests.tenants.factories import make_provider
from tests.tenants.factories import make_suite

SEEDS = [1, 2, 3, 20261207]
SUITES, CORPS, CLIENTS = 4, 6, 8


def _world(rng: random.Random, seed: int):
    provider = make_provider()
    suites = [make_suite(provider, suite_id=f"wwscope{seed}s{i}") for i in range(SUITES)]
    corps = [Corp.objects.create(corpid=f"wpscope{seed}c{i}") for i in range(CORPS)]
    pairs = set()
    for suite in suites:
        for corp in corps:
            if rng.random() < 0.5:
                authorization = Authorization(suite=suite, corp=corp)
                authorization.status = rng.choice(list(Authorization.Status))
                authorization.permanent_code = f"PERM{suite.pk}x{corp.pk}"
                authorization.save()
                pairs.add((suite.pk, corp.pk))
    clients = []
    for n in range(CLIENTS):
        # Empty scopes included: fail-closed means they see nothing.
        chosen_suites = rng.sample(suites, rng.randint(0, 2))
        chosen_corps = rng.sample(corps, rng.randint(0, 3))
        client, issued = api_services.api_client_create(
            name=f"scope-{seed}-{n}",
            suite_ids=[s.suite_id for s in chosen_suites],
            corpids=[c.corpid for c in chosen_corps],
        )
        scope = ({s.pk for s in chosen_suites}, {c.pk for c in chosen_corps})
        clients.append((client, key_prefix_of(issued.key), scope))
    return suites, corps, pairs, clients


@pytest.mark.django_db
@pytest.mark.parametrize("seed", SEEDS)
def test_orm_and_sql_scopes_agree_on_a_random_clients_by_tenants_matrix(seed):
    rng = random.Random(seed)
    suites, corps, pairs, clients = _world(rng, seed)
    checked = visible_somewhere = 0
    for client, prefix, (suite_pks, corp_pks) in clients:
        orm = set(
            selectors.authorizations_visible(client=client).values_list("suite_id", "corp_id")
        )
        for suite in suites:
            for corp in corps:
                pair = (suite.pk, corp.pk)
                rule = pair in pairs and (suite.pk in suite_pks or corp.pk in corp_pks)
                sql = selectors.authorization_visible(
                    client=client, suite_id=suite.suite_id, corpid=corp.corpid
                )
                key, folded = selectors.api_key_lookup(
                    prefix=prefix, tenant=(suite.suite_id, corp.corpid)
                )
                assert key is not None
                assert key.client.pk == client.pk
                answers = {
                    "rule": rule,
                    "orm": pair in orm,
                    "sql": sql is not None,
                    "key lookup sql": folded is not None,
                }
                assert len(set(answers.values())) == 1, (
                    client.name,
                    suite.suite_id,
                    corp.corpid,
                    answers,
                )
                if sql is not None:
                    assert (sql.suite_id, sql.corp_id) == pair
                    assert (folded.suite_id, folded.corp_id) == pair
                checked += 1
                visible_somewhere += rule
    assert checked == CLIENTS * SUITES * CORPS
    # The world is not degenerate: some pairs are visible, most are not.
    assert 0 < visible_somewhere < checked


def test_the_scope_is_built_from_one_table():
    assert [column for _, column in selectors.SCOPE_LINKS] == ["suite_id", "corp_id"]
    sql = selectors._scope_sql("%s", "a")
    assert sql.count("EXISTS") == len(selectors.SCOPE_LINKS)
    for link, column in selectors.SCOPE_LINKS:
        assert link._meta.db_table in sql
        assert f'a."{column}"' in sql
