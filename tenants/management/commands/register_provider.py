"""manage.py register_provider --corpid C --secret S --token T --aes-key K

Creates the provider or updates it (idempotent). Secrets may come from the environment
instead of flags (flags show up in process lists): WECOM_PROVIDER_CORPID,
WECOM_PROVIDER_SECRET, WECOM_PROVIDER_TOKEN, WECOM_PROVIDER_AES_KEY.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tenants import services
from tenants.management.commands._credentials import option_or_env
from tenants.management.commands._credentials import print_urls
from tenants.management.commands._credentials import secret_option
from tenants.management.commands._credentials import validate_callback_settings


class Command(BaseCommand):
    help = "Create or update the service provider (secrets are stored encrypted)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--corpid", help="the provider's own corpid (env WECOM_PROVIDER_CORPID)"
        )
        parser.add_argument("--secret", help="provider_secret (env WECOM_PROVIDER_SECRET)")
        parser.add_argument(
            "--token", help="system-event callback Token (env WECOM_PROVIDER_TOKEN)"
        )
        parser.add_argument(
            "--aes-key", help="system-event EncodingAESKey (env WECOM_PROVIDER_AES_KEY)"
        )
        parser.add_argument("--name", default="", help="display name")

    def handle(self, *args, **options) -> None:
        corpid = option_or_env(options["corpid"], "WECOM_PROVIDER_CORPID", "--corpid")
        secret = secret_option(options["secret"], "WECOM_PROVIDER_SECRET", "--secret", self.stderr)
        token = secret_option(options["token"], "WECOM_PROVIDER_TOKEN", "--token", self.stderr)
        aes_key = secret_option(
            options["aes_key"], "WECOM_PROVIDER_AES_KEY", "--aes-key", self.stderr
        )
        validate_callback_settings(token, aes_key, corpid)
        provider, created = services.provider_register(
            corpid=corpid,
            provider_secret=secret,
            callback_token=token,
            encoding_aes_key=aes_key,
            name=options["name"],
        )
        self.stdout.write(f"provider {provider.corpid} {'created' if created else 'updated'}")
        print_urls(self.stdout, services.callback_urls(provider=provider))
