"""manage.py wecom_sandbox: run the WeCom simulator in the foreground until Ctrl-C."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from sandbox import start_sandbox
from sandbox.server import run_forever


class Command(BaseCommand):
    help = "Run the WeCom simulator (API, callbacks, control API under /sandbox/)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9800)
        parser.add_argument(
            "--callback-base",
            default="http://127.0.0.1:8000",
            help="where the platform serves /callbacks/… (default http://127.0.0.1:8000)",
        )
        parser.add_argument("--config", default=None, help="scenario YAML/JSON file")
        parser.add_argument(
            "--ticket-interval",
            type=float,
            default=600,
            help="seconds between suite_ticket pushes (simulator clock)",
        )
        parser.add_argument("--snapshot", default=None, help="JSON state file (load + save)")
        parser.add_argument("--verbose", action="store_true", help="log every request")

    def handle(self, *args, **options):
        handle = start_sandbox(
            host=options["host"],
            port=options["port"],
            callback_base=options["callback_base"] or None,
            config=options["config"],
            ticket_interval=options["ticket_interval"],
            snapshot=options["snapshot"],
            verbose=options["verbose"],
        )
        run_forever(handle, out=self.stdout)
