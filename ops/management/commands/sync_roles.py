"""manage.py sync_roles: (re)create the viewer, operator and security admin groups."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ops.roles import sync_roles


class Command(BaseCommand):
    help = "Create the ops roles (Django groups) and set their permissions from ops/roles.py."

    def handle(self, *args, **options) -> None:
        for name, count in sync_roles().items():
            self.stdout.write(f"{name}: {count} permission(s)")
