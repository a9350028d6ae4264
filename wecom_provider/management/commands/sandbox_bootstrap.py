"""manage.py sandbox_bootstrap [--sandbox URL] [--demo]

Development only (`make run`): registers the simulator's provider and suites in the
platform, then, with --demo and on the first run, plays a newcomer's first minute:
the simulated admins install the suite in every corp (create_auth callbacks), one
license order is created and paid (license_pay_success callback), and one paid-app order
is placed and paid (open_order, pay_for_app_success, change_editon). Everything after
the registration flows through the real callback and worker path.
"""

from __future__ import annotations

import time

import httpx
from django.core.management.base import BaseCommand
from django.core.management.base import CommandError

from sandbox.control import SandboxControl
from tenants import services
from tenants.models import Authorization


class Command(BaseCommand):
    help = "Register the WeCom simulator's provider and suites (and optionally play a demo)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sandbox", default="http://127.0.0.1:9800")
        parser.add_argument("--demo", action="store_true", help="install corps and pay an order")
        parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for it")

    def handle(self, *args, sandbox: str, demo: bool, wait: float, **options) -> None:
        control = SandboxControl(sandbox)
        config = self._config(control, wait)
        raw = config["provider"]
        provider, _ = services.provider_register(
            corpid=raw["corpid"],
            provider_secret=raw["provider_secret"],
            callback_token=raw["token"],
            encoding_aes_key=raw["encoding_aes_key"],
            name=raw.get("name", ""),
        )
        suites = []
        for raw_suite in config["suites"]:
            suite, _ = services.suite_register(
                provider=provider,
                suite_id=raw_suite["suite_id"],
                secret=raw_suite["secret"],
                callback_token=raw_suite["token"],
                encoding_aes_key=raw_suite["encoding_aes_key"],
                kind=raw_suite["kind"],
                name=raw_suite.get("name", ""),
            )
            suites.append(suite)
        self.stdout.write(f"registered provider {provider.corpid} and {len(suites)} suite(s)")
        control.push_ticket()  # the first push went out before we knew the suites
        self.stdout.write("asked the simulator to push fresh suite tickets")
        if demo and not Authorization.objects.exists():
            self._demo(control, config, suites)

    def _config(self, control: SandboxControl, wait: float) -> dict:
        deadline = time.monotonic() + wait
        while True:
            try:
                return control.config()
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise CommandError("the simulator did not answer") from None
                time.sleep(0.5)

    def _demo(self, control: SandboxControl, config: dict, suites) -> None:
        third_party = next(s for s in suites if not s.is_customized)
        corps = config["corps"]
        for corp in corps:
            control.install(third_party.suite_id, corp["corpid"], state="demo")
        self.stdout.write(f"demo: {len(corps)} corp(s) are installing {third_party.suite_id}")
        deadline = time.monotonic() + 60
        while Authorization.objects.filter(suite=third_party).count() < len(corps):
            if time.monotonic() > deadline:
                self.stderr.write("demo: installs are still pending; is the worker running?")
                return
            time.sleep(1)
        self.stdout.write("demo: all corps installed (create_auth callbacks processed)")
        from licensing.services import license_order_create

        first = Authorization.objects.select_related("corp").filter(suite=third_party).first()
        order = license_order_create(
            corp=first.corp, buyer_userid=config["buyers"][0], base_count=5, months=1
        )
        control.pay_order(order.order_id)
        self.stdout.write(
            f"demo: license order {order.order_id} for {first.corp.corpid} created and paid "
            "(watch it turn paid in the admin)"
        )
        # A paid-app purchase (应用版本付费): open_order, pay_for_app_success, change_editon.
        bought = control.create_app_order(third_party.suite_id, first.corp.corpid, user_count=20)
        control.app_order(bought["orderid"], "pay")
        self.stdout.write(
            f"demo: app order {bought['orderid']} ({bought['edition_name']}) placed and paid "
            "(admin → App orders and Tenant editions)"
        )
