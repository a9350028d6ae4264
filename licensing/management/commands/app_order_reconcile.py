"""manage.py app_order_reconcile: mirror every paid-app order and edition now."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.core.management.base import CommandError

from licensing.app_orders import reconcile
from licensing.services import list_order_windows
from tenants.models import Suite
from wecom_provider.progress import Progress


class Command(BaseCommand):
    help = (
        "Walk WeCom's service/get_order_list in 31-day windows over the history for every "
        "suite, then read the edition of every paying or trialling tenant."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="days of history to walk (default: APP_ORDER_RECONCILE_DAYS, "
            f"now {settings.APP_ORDER_RECONCILE_DAYS})",
        )
        parser.add_argument(
            "--orders-only", action="store_true", help="skip reading the editions again"
        )

    def handle(self, *args, days=None, orders_only=False, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1")
        windows = len(list_order_windows(days=days or settings.APP_ORDER_RECONCILE_DAYS))
        # Progress writes its own line ends ("\r" redraws on a terminal).
        ending, self.stdout.ending = self.stdout.ending, ""
        try:
            with Progress(self.stdout, windows * Suite.objects.count(), "windows") as progress:
                result = reconcile.app_orders_reconcile(
                    days=days, read_editions=not orders_only, progress=progress
                )
        finally:
            self.stdout.ending = ending
        self.stdout.write(
            f"suites={result.suites} windows={result.windows} "
            f"orders_listed={result.orders_listed} orders_new={result.orders_new} "
            f"orders_moved={result.orders_moved} editions_read={result.editions_read} "
            f"editions_changed={result.editions_changed} errors={len(result.errors)}"
        )
        for error in result.errors:
            self.stderr.write(error)
        if result.errors:
            raise CommandError(f"{len(result.errors)} error(s) while reconciling")
