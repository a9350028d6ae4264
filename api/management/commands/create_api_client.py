"""manage.py create_api_client NAME [--suite ID]… [--corp C]… [--expires-in-days N]
                                [--rate-limit N] [--wecom-path PATTERN]…
   manage.py create_api_client --rotate NAME [--expires-in-days N]
   manage.py create_api_client --revoke-key PREFIX

Creates an API client scoped to suites (all their corps) and/or corps (those only) and
prints its key once, alone on the last line (so ``| tail -n 1`` captures it). The key
is never stored (only its SHA-256) and cannot be shown again.

``--wecom-path`` (repeatable) lets the client call those WeCom API paths through the
gateway (``user/*``, ``message/send``; ``*`` matches any characters); none by default.

``--rotate NAME`` issues a second key for an existing client; both work until the old
one is revoked (``--revoke-key <prefix>`` or admin). A client has at most two usable keys.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.core.management.base import CommandError

from api import services
from api.keys import KEY_PREFIX
from api.models import ApiClient
from api.models import ApiKey


class Command(BaseCommand):
    help = "Create an API client (or rotate/revoke a key); prints the new key on the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", nargs="?", help="the client's name (an internal product)")
        parser.add_argument(
            "--suite", action="append", default=[], dest="suites", help="suite_id (repeatable)"
        )
        parser.add_argument(
            "--corp", action="append", default=[], dest="corps", help="corpid (repeatable)"
        )
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--rate-limit", type=int, default=None, help="requests per minute")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--wecom-path",
            action="append",
            default=[],
            dest="wecom_paths",
            help="WeCom API path pattern the client may call through the gateway (repeatable)",
        )
        parser.add_argument("--rotate", metavar="NAME", help="issue a second key for NAME")
        parser.add_argument("--revoke-key", metavar="PREFIX", help="revoke one key now")

    def handle(self, *args, name, suites, corps, expires_in_days, rate_limit, **options) -> None:
        if options["revoke_key"]:
            self._revoke(options["revoke_key"])
            return
        if options["rotate"]:
            self._rotate(options["rotate"], expires_in_days)
            return
        if not name:
            raise CommandError("give the client's NAME (or --rotate NAME / --revoke-key PREFIX)")
        if rate_limit is not None and rate_limit < 1:
            raise CommandError("--rate-limit must be at least 1")
        try:
            client, issued = services.api_client_create(
                name=name,
                suite_ids=suites,
                corpids=corps,
                expires_in_days=expires_in_days,
                rate_limit_per_minute=rate_limit,
                description=options["description"],
                wecom_paths=options["wecom_paths"],
                actor="manage.py create_api_client",
            )
        except services.ApiClientError as exc:
            raise CommandError(str(exc)) from None
        if not suites and not corps:
            self.stderr.write("warning: the client has no scope yet and will see nothing")
        self.stdout.write(
            f"created API client {client.name!r}: {len(suites)} suite(s), {len(corps)} corp(s)"
        )
        self._print_key(issued)

    def _rotate(self, name: str, expires_in_days: int | None) -> None:
        client = ApiClient.objects.filter(name=name).first()
        if client is None:
            raise CommandError(f"no API client named {name!r}")
        try:
            issued = services.api_key_issue(
                client=client, expires_in_days=expires_in_days, actor="manage.py --rotate"
            )
        except services.ApiClientError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"issued a second key for {client.name!r}; revoke the old one when it is replaced"
        )
        self._print_key(issued)

    def _revoke(self, prefix: str) -> None:
        prefix = prefix.removeprefix(KEY_PREFIX).rstrip("…")
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"no key with prefix {prefix!r}")
        services.api_key_revoke(key=key)
        self.stdout.write(f"revoked key {key.display} of {key.client.name!r}")

    def _print_key(self, issued: services.IssuedKey) -> None:
        expiry = issued.row.expires_at.isoformat() if issued.row.expires_at else "never"
        self.stdout.write(f"key {issued.row.display} expires: {expiry}")
        self.stdout.write("the key is shown once, on the next line:")
        self.stdout.write(issued.key)
