"""Least privilege in the ops console: every action and every custom admin view names
the permission it needs, and a request without it gets 403 and changes nothing.

Django on its own offers an action with no ``permissions=[...]`` to anyone who can see
the list, and answers a POST of an action the user may not run with "No action
selected" (a redirect), not a refusal. :class:`GuardedModelAdmin` closes both:

- ``@admin.action(permissions=["replay_callback"])`` is checked by a
  ``has_replay_callback_permission`` method that this base class provides for each
  codename in the model's ``Meta.permissions`` (no hand-written method per action);
- a POST naming an action the user may not run is refused with 403 before any query
  touches the selection.

Custom admin views (the ops dashboard, the key-shown-once page, the test-install link)
are wrapped in :func:`admin_view_requiring`, which records the permissions on the view
so the permission matrix test can discover them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http import HttpResponse


class GuardedModelAdmin(admin.ModelAdmin):
    """Base for every ModelAdmin of the project (see the module docstring)."""

    def __getattr__(self, name: str):
        # Only reached for attributes the class does not define: map
        # has_<codename>_permission to the model's custom permission <app>.<codename>.
        if name.startswith("has_") and name.endswith("_permission"):
            codename = name[len("has_") : -len("_permission")]
            opts = self.__dict__.get("opts")
            if opts is not None and codename in {c for c, _ in opts.permissions}:
                perm = f"{opts.app_label}.{codename}"

                def check(request: HttpRequest, obj=None) -> bool:
                    return request.user.has_perm(perm)

                return check
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def changelist_view(self, request, extra_context=None):
        # get_actions() already drops the actions whose permissions the user lacks;
        # anything else named in the POST (an unknown or forbidden action) is refused
        # here, before the selection is read or the action runs.
        if (
            request.method == "POST"
            and "action" in request.POST
            and request.POST["action"] not in self.get_actions(request)
        ):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)


def admin_view_requiring(*perms: str) -> Callable:
    """Decorate a custom admin view: 403 unless the user has every one of ``perms``.

    Wrap the result in ``admin.site.admin_view`` as usual (staff login, CSRF, no cache).
    """
    if not perms:
        raise ValueError("a custom admin view must name the permission it needs")

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perms(perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        guarded.required_permissions = tuple(perms)
        return guarded

    return decorate


def required_permissions(view: Callable) -> tuple[str, ...] | None:
    """Return the permissions a (possibly wrapped) custom admin view declares, or None."""
    while view is not None:
        perms = getattr(view, "required_permissions", None)
        if perms is not None:
            return perms
        view = getattr(view, "__wrapped__", None)
    return None


class ReadOnlyInline(admin.TabularInline):
    """A record shown beside its parent that no admin page writes (history, attempts...).

    Set ``model`` and ``fields``; every field is read-only, and nobody adds, changes or
    deletes rows here: they are written by services only.
    """

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields or ()

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
