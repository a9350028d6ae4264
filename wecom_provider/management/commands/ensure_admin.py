"""Create or update a superuser from an environment variable (used by `make run`)."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.core.management.base import CommandError


class Command(BaseCommand):
    help = "Create or update a superuser whose password comes from an environment variable."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--password-env",
            default="ADMIN_PASSWORD",
            help="name of the environment variable holding the password (never a flag: "
            "flags show up in process lists)",
        )

    def handle(self, *args, username: str, password_env: str, **options) -> None:
        password = os.environ.get(password_env)
        if not password:
            raise CommandError(f"{password_env} is not set")
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"admin user {username!r} {'created' if created else 'updated'}")
