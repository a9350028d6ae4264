"""The three ops roles as Django groups: who may see and do what in the console.

``viewer`` reads everything the console shows (no secret is ever shown); ``operator``
also runs the day-to-day actions (replay, resync, refresh, suspend/resume, licences);
``security admin`` also manages API clients and keys, key rotation and test installs.
Roles are cumulative on purpose: an operator or a security admin needs the lists to act
on. Created by ``ops/migrations/0001_roles.py``; ``manage.py sync_roles`` puts them back
in line with this module (it removes any permission added to a group by hand).
"""

from __future__ import annotations

VIEWER = "viewer"
OPERATOR = "operator"
SECURITY_ADMIN = "security admin"

# Apps whose view permissions make up the read-only console.
CONSOLE_APPS = ("tenants", "licensing", "callbacks", "api", "webhooks")

OPERATOR_PERMISSIONS = (
    "tenants.refresh_suite_token",
    "tenants.refresh_corp_token",
    "tenants.resync_authorization",
    "tenants.suspend_authorization",
    "tenants.resume_authorization",
    "callbacks.replay_callback",
    "callbacks.quarantine_callback",
    "licensing.sync_licenseorder",
    "licensing.cancel_licenseorder",
    "licensing.activate_licenseaccount",
    "licensing.refresh_licenseaccount",
    "licensing.sync_license_info",
    "licensing.reconcile_license_accounts",
    "licensing.sync_apporder",
    "licensing.refresh_tenantedition",
    "licensing.prolong_trial",
    "webhooks.replay_delivery",
    "webhooks.enable_subscription",
)

SECURITY_ADMIN_PERMISSIONS = (
    "api.add_apiclient",
    "api.change_apiclient",
    "api.issue_apikey",
    "api.revoke_apiclient",
    "api.revoke_apikey",
    "ops.rotate_keys",
    "tenants.create_test_install_link",
    "webhooks.add_subscription",
    "webhooks.change_subscription",
    "webhooks.rotate_webhook_secret",
)


def role_permissions(Permission) -> dict[str, set[tuple[str, str]]]:
    """Return ``{group name: {(app_label, codename)}}``; views are read from the database."""
    views = {
        (app, codename)
        for app, codename in Permission.objects.filter(
            content_type__app_label__in=CONSOLE_APPS, codename__startswith="view_"
        ).values_list("content_type__app_label", "codename")
    }
    views.add(("ops", "view_dashboard"))

    def split(perms):
        return {tuple(p.split(".", 1)) for p in perms}

    return {
        VIEWER: views,
        OPERATOR: views | split(OPERATOR_PERMISSIONS),
        SECURITY_ADMIN: views | split(SECURITY_ADMIN_PERMISSIONS),
    }


def sync_roles(apps=None) -> dict[str, int]:
    """Create the groups and set their permissions exactly; return the count per group.

    ``apps``: the migration state's registry (data migration), else the real one.
    Permissions are created first: they are normally made after ``migrate`` (signal),
    which is too late for a data migration.
    """
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    apps = apps or global_apps
    # The real app configs (they have models modules), the given registry's models: the
    # usual recipe for permissions inside a data migration.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    counts = {}
    for name, wanted in role_permissions(Permission).items():
        rows = [
            p
            for p in Permission.objects.filter(
                content_type__app_label__in={app for app, _ in wanted}
            ).select_related("content_type")
            if (p.content_type.app_label, p.codename) in wanted
        ]
        missing = wanted - {(p.content_type.app_label, p.codename) for p in rows}
        if missing:
            # Fail loudly: a role that silently lacks a permission is a broken role.
            raise LookupError(f"role {name!r}: no such permission(s) {sorted(missing)}")
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(rows)
        counts[name] = len(rows)
    return counts
