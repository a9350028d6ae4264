"""manage.py license_reconcile: mirror every license order and activated account now."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.management.base import CommandError

from licensing import services


class Command(BaseCommand):
    help = (
        "Walk WeCom's list_order in 31-day windows over the history and each corp's "
        "activated accounts, mirroring what the platform missed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="days of history to walk (default: LICENSE_RECONCILE_DAYS, "
            f"now {settings.LICENSE_RECONCILE_DAYS})",
        )
        parser.add_argument(
            "--orders-only", action="store_true", help="skip the per-corp account walk"
        )

    def handle(self, *args, days=None, orders_only=False, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1")
        # Progress writes its own line ends ("\r" redraws on a terminal).
        ending, self.stdout.ending = self.stdout.ending, ""
        try:
            result = services.license_reconcile(
                days=days, stream=self.stdout, corps=not orders_only
            )
        except services.LicenseError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            self.stdout.ending = ending
        self.stdout.write(
            f"windows={result.windows} orders_listed={result.orders_listed} "
            f"orders_synced={result.orders_synced} orders_new={result.orders_new} "
            f"corps={result.corps} activated_accounts={result.accounts} "
            f"errors={len(result.errors)}"
        )
        for error in result.errors:
            self.stderr.write(error)
        if result.errors:
            raise CommandError(f"{len(result.errors)} error(s) while reconciling")
