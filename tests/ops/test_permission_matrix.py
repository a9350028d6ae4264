"""Least privilege in the ops console, discovered at run time (no hand-kept list).

Every registered ModelAdmin, each of its actions and every admin URL (the model views
and any custom view, such as the ops dashboard) is found by walking ``admin.site``. For
each role (viewer, operator, security admin) and a staff user without a role:

- an action or view the role may use works (no 403; the action ran);
- one it may not use answers 403 and leaves the database exactly as it was.

An action that declares no permission, or a custom admin view that declares none, fails
the test: that is what makes a new, undeclared action show up here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core import serializers
from django.test import Client
from django.test import RequestFactory
from django.urls import URLPattern
from django.urls import URLResolver
from django.utils import timezone
from django.views.generic import RedirectView

from api import services as api_services
from callbacks.models import CallbackEvent
from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import TenantEdition
from licensing.models import AccountStatus
from licensing.models import AccountType
from licensing.models import LicenseAccount
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from ops import roles
from tenants.feed import feed_publish
from tests.api.conftest import install
from webhooks import services as webhook_services
from wecom_provider.adminperms import required_permissions

APPS = ("tenants", "licensing", "callbacks", "api", "ops", "webhooks", "auth")
# Django's own site-level admin pages: login, index and friends (no change; staff only).
SITE_VIEWS = {
    "index",
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "autocomplete",
    "jsi18n",
    "view_on_site",
    "app_list",
}


def site_view(pattern) -> bool:
    """Django's own site pages, and its unnamed catch-all (answers 404 for unknown URLs)."""
    if pattern.name is None:
        return getattr(pattern.callback, "__name__", "") == "catch_all_view"
    return pattern.name in SITE_VIEWS


def redirect_only(pattern) -> bool:
    """Django's unnamed ``<object_id>/`` pattern: a redirect to the change view."""
    return getattr(pattern.callback, "view_class", None) is RedirectView
    return pattern.name in SITE_VIEWS


MODEL_VIEW_SUFFIXES = {"changelist", "add", "history", "delete", "change"}
NO_ACTION_RAN = {
    "No action selected.",
    "Items must be selected in order to perform actions on them. No items have been changed.",
}


def snapshot() -> dict[str, str]:
    """Every row of every stored model of the project (and auth), serialized."""
    state = {}
    for app in APPS:
        for model in apps.get_app_config(app).get_models():
            if model._meta.proxy or not model._meta.managed:
                continue
            state[model._meta.label] = serializers.serialize(
                "json", model._default_manager.order_by("pk")
            )
    return state


@dataclass
class Role:
    name: str
    client: Client
    user: object


@pytest.fixture
def roles_users(django_user_model, plain_static) -> list[Role]:
    out = []
    for name in (roles.VIEWER, roles.OPERATOR, roles.SECURITY_ADMIN, None):
        username = f"staff-{name or 'none'}".replace(" ", "-")
        user = django_user_model.objects.create_user(username, password="x", is_staff=True)
        if name:
            # The groups come from the data migration (ops/migrations/0002_roles.py).
            user.groups.add(Group.objects.get(name=name))
        client = Client()
        client.force_login(user)
        out.append(Role(name or "no role", client, django_user_model.objects.get(pk=user.pk)))
    return out


@pytest.fixture
def rows(platform):
    """At least one row behind each action, so allowed actions really run."""
    authorization = install(platform)
    client, _ = api_services.api_client_create(name="crm", suite_ids=[platform.suite.suite_id])
    webhook_services.subscription_create(
        client=client, url="https://93.184.216.34/hook", event_types=["*"]
    )
    feed_publish(type="tenant.changed", source_key="matrix", suite=platform.suite)
    event = CallbackEvent(
        endpoint=CallbackEvent.Endpoint.values[0],
        route_id=platform.suite.suite_id,
        receive_id=platform.suite.suite_id,
        info_type="change_auth",
        suite_id=platform.suite.suite_id,
        corp_id=authorization.corp.corpid,
        dedupe_key="matrix-1",
        status=CallbackEvent.Status.FAILED,
    )
    event.payload = "{}"
    event.save()
    order = LicenseOrder.objects.create(
        order_id="matrix-order", corp=authorization.corp, status=OrderStatus.UNPAID
    )
    LicenseAccount.objects.create(
        corp=authorization.corp,
        active_code="matrix-code",
        order=order,
        type=AccountType.values[0],
        status=AccountStatus.UNBOUND,
        created_time=timezone.now(),
    )
    AppOrder.objects.create(
        order_id="matrix-app-order", suite=platform.suite, corp=authorization.corp, status=0
    )
    TenantEdition.objects.get_or_create(authorization=authorization)


def request_for(user, method: str = "get"):
    request = getattr(RequestFactory(), method)("/admin/")
    request.user = user
    return request


def model_actions():
    for model, model_admin in admin.site._registry.items():
        for func, name, _ in model_admin._get_base_actions():
            yield model, model_admin, func, name


def test_every_action_declares_a_permission():
    undeclared = [
        f"{model._meta.label}.{name}"
        for model, _, func, name in model_actions()
        if not getattr(func, "allowed_permissions", ())
    ]
    assert not undeclared, f"admin actions without permissions=[...]: {undeclared}"


def test_every_custom_admin_view_declares_a_permission():
    undeclared = []
    for pattern in admin.site.get_urls():
        if (
            isinstance(pattern, URLPattern)
            and not site_view(pattern)
            and required_permissions(pattern.callback) is None
        ):
            undeclared.append(pattern.name)
    for model_admin in admin.site._registry.values():
        for pattern in model_admin.get_urls():
            suffix = (pattern.name or "").rsplit("_", 1)[-1]
            if (
                isinstance(pattern, URLPattern)
                and suffix not in MODEL_VIEW_SUFFIXES
                and not redirect_only(pattern)
                and required_permissions(pattern.callback) is None
            ):
                undeclared.append(pattern.name or str(pattern.pattern))
    assert not undeclared, f"custom admin views without a declared permission: {undeclared}"


@pytest.mark.django_db
def test_roles_are_what_the_runbook_says():
    viewer = Group.objects.get(name=roles.VIEWER)
    assert viewer.permissions.exists()
    assert not viewer.permissions.exclude(codename__startswith="view_").exists()
    operator = {p.codename for p in Group.objects.get(name=roles.OPERATOR).permissions.all()}
    security = {p.codename for p in Group.objects.get(name=roles.SECURITY_ADMIN).permissions.all()}
    assert "issue_apikey" in security
    assert "issue_apikey" not in operator
    assert "replay_callback" in operator
    assert "replay_callback" not in security
    assert not any(c.startswith("delete_") for c in operator | security)


@pytest.mark.django_db(transaction=False)
def test_action_matrix(rows, roles_users):
    checked = ran = 0
    for model, model_admin, func, name in model_actions():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for role in roles_users:
            perms = func.allowed_permissions
            allowed = all(
                getattr(model_admin, f"has_{p}_permission")(request_for(role.user)) for p in perms
            )
            if role.name == roles.VIEWER:
                assert not allowed, f"viewer may run {url} {name}"
            first = model_admin.get_queryset(request_for(role.user)).order_by("pk").first()
            pk = first.pk if first is not None else 0
            before = snapshot()
            response = role.client.post(url, {"action": name, ACTION_CHECKBOX_NAME: [pk]})
            checked += 1
            if not allowed:
                assert response.status_code == 403, (role.name, url, name, response.status_code)
                assert snapshot() == before, f"{role.name}: {url} {name} changed the database"
                continue
            assert response.status_code in {200, 302}, (role.name, url, name)
            if first is not None:
                texts = {str(m) for m in get_messages(response.wsgi_request)}
                # Django says one of these when it did not run the action.
                assert not texts & NO_ACTION_RAN, (role.name, url, name, texts)
                ran += 1
    assert checked  # the walk found actions
    assert ran  # and some of them really ran


def model_view_cases(model, model_admin, obj):
    info = f"{model._meta.app_label}_{model._meta.model_name}"
    for pattern in model_admin.get_urls():
        name = pattern.name or ""
        suffix = name.removeprefix(info + "_")
        if suffix == "changelist":
            yield name, [], "view", ("get",)
        elif suffix == "add":
            yield name, [], "add", ("get", "post")
        elif suffix in {"change", "history", "delete"} and obj is not None:
            kind = {"change": "change", "history": "view", "delete": "delete"}[suffix]
            methods = ("get", "post") if suffix != "history" else ("get",)
            yield name, [obj.pk], kind, methods
        elif suffix not in MODEL_VIEW_SUFFIXES and required_permissions(pattern.callback):
            args = [obj.pk] if obj is not None and "object_id" in str(pattern.pattern) else []
            yield name, args, "custom", ("get", "post")


def expected(model_admin, user, kind: str, method: str, obj, view) -> bool:
    request = request_for(user, method)
    if kind == "view":
        return model_admin.has_view_or_change_permission(request)
    if kind == "add":
        return model_admin.has_add_permission(request)
    if kind == "change":
        if method == "get":
            return model_admin.has_view_or_change_permission(request, obj)
        return model_admin.has_change_permission(request, obj)
    if kind == "delete":
        return model_admin.has_delete_permission(request, obj)
    return user.has_perms(required_permissions(view))


@pytest.mark.django_db(transaction=False)
def test_view_matrix(rows, roles_users):
    from django.urls import reverse

    checked = 0
    for model, model_admin in admin.site._registry.items():
        superuser_request = request_for(type(roles_users[0].user)(is_superuser=True))
        obj = model_admin.get_queryset(superuser_request).order_by("pk").first()
        for name, args, kind, methods in model_view_cases(model, model_admin, obj):
            url = reverse(f"admin:{name}", args=args)
            view = next(p.callback for p in model_admin.get_urls() if p.name == name)
            for role in roles_users:
                for method in methods:
                    allowed = expected(model_admin, role.user, kind, method, obj, view)
                    if role.name == roles.VIEWER and method == "post":
                        assert not allowed, f"viewer may POST {url}"
                    if allowed and method == "post" and kind == "delete":
                        continue  # no role holds a delete permission; never delete here
                    before = snapshot()
                    response = getattr(role.client, method)(url, {})
                    checked += 1
                    if allowed:
                        assert response.status_code != 403, (role.name, method, url)
                        assert response.status_code < 500, (role.name, method, url)
                    else:
                        assert response.status_code == 403, (role.name, method, url)
                        assert snapshot() == before, f"{role.name} {method} {url} changed data"
    # Site-level custom views (the ops dashboard and any added later).
    for pattern in admin.site.get_urls():
        if not isinstance(pattern, URLPattern) or site_view(pattern):
            continue
        perms = required_permissions(pattern.callback)
        url = reverse(f"admin:{pattern.name}")
        for role in roles_users:
            for method in ("get", "post"):
                before = snapshot()
                response = getattr(role.client, method)(url, {})
                checked += 1
                if role.user.has_perms(perms):
                    assert response.status_code not in {403, 500}, (role.name, method, url)
                else:
                    assert response.status_code == 403, (role.name, method, url)
                    assert snapshot() == before
    assert checked
    assert all(isinstance(p, URLPattern | URLResolver) for p in admin.site.get_urls())
