"""What the licensing admins share: the interface-licence console (licensing/admin.py) and
the paid-app console (licensing/app_orders/admin.py), which licensing/admin.py imports to
register it (so it cannot import licensing/admin.py back)."""

from __future__ import annotations

from django.contrib import messages


class ReadOnlyMixin:
    """The mirror is written by services only: no add, change or delete by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _report(modeladmin, request, done: int, failures: list[str], verb: str) -> None:
    if done:
        modeladmin.message_user(request, f"{verb}: {done}", messages.SUCCESS)
    for failure in failures[:10]:
        modeladmin.message_user(request, failure, messages.ERROR)
