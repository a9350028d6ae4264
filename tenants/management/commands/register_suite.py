"""manage.py register_suite --suite-id ID --secret S --token T --aes-key K [--kind …] [--provider C]

Creates the suite (third-party app) or 代开发 template, or updates it (idempotent).
Environment fallbacks: WECOM_SUITE_ID, WECOM_SUITE_SECRET, WECOM_SUITE_TOKEN,
WECOM_SUITE_AES_KEY.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.core.management.base import CommandError

from tenants import services
from tenants.management.commands._credentials import option_or_env
from tenants.management.commands._credentials import print_urls
from tenants.management.commands._credentials import secret_option
from tenants.management.commands._credentials import validate_callback_settings
from tenants.models import Provider
from tenants.models import Suite


class Command(BaseCommand):
    help = "Create or update a suite or customized-app template (secrets are stored encrypted)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--suite-id", help="suite_id or template id (env WECOM_SUITE_ID)")
        parser.add_argument("--secret", help="suite_secret (env WECOM_SUITE_SECRET)")
        parser.add_argument("--token", help="callback Token (env WECOM_SUITE_TOKEN)")
        parser.add_argument("--aes-key", help="callback EncodingAESKey (env WECOM_SUITE_AES_KEY)")
        parser.add_argument("--kind", choices=Suite.Kind.values, default=Suite.Kind.THIRD_PARTY)
        parser.add_argument("--provider", help="provider corpid (default: the only provider)")
        parser.add_argument("--name", default="")

    def handle(self, *args, **options) -> None:
        suite_id = option_or_env(options["suite_id"], "WECOM_SUITE_ID", "--suite-id")
        secret = secret_option(options["secret"], "WECOM_SUITE_SECRET", "--secret", self.stderr)
        token = secret_option(options["token"], "WECOM_SUITE_TOKEN", "--token", self.stderr)
        aes_key = secret_option(options["aes_key"], "WECOM_SUITE_AES_KEY", "--aes-key", self.stderr)
        validate_callback_settings(token, aes_key, suite_id)
        provider = self._provider(options["provider"])
        suite, created = services.suite_register(
            provider=provider,
            suite_id=suite_id,
            secret=secret,
            callback_token=token,
            encoding_aes_key=aes_key,
            kind=options["kind"],
            name=options["name"],
        )
        self.stdout.write(
            f"suite {suite.suite_id} ({suite.get_kind_display()}) "
            f"{'created' if created else 'updated'}"
        )
        print_urls(self.stdout, services.callback_urls(suite=suite))

    def _provider(self, corpid: str | None) -> Provider:
        if corpid:
            provider = Provider.objects.filter(corpid=corpid).first()
            if provider is None:
                raise CommandError(f"no provider {corpid!r}: run register_provider first")
            return provider
        providers = list(Provider.objects.all()[:2])
        if len(providers) != 1:
            raise CommandError("pass --provider: there is not exactly one provider")
        return providers[0]
