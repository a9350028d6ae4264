"""Registration of the provider and its suites, and the suite tickets WeCom pushes."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenants import credentials
from tenants.models import CredentialToken
from tenants.models import Provider
from tenants.models import Suite


def provider_register(
    *, corpid: str, provider_secret: str, callback_token: str, encoding_aes_key: str, name: str = ""
) -> tuple[Provider, bool]:
    """Create or update the provider; return it and whether it was created."""
    with transaction.atomic():
        provider = Provider.objects.select_for_update().filter(corpid=corpid).first()
        created = provider is None
        if provider is None:
            provider = Provider(corpid=corpid)
        provider.name = name or provider.name
        provider.provider_secret = provider_secret
        provider.callback_token = callback_token
        provider.encoding_aes_key = encoding_aes_key
        provider.save()
    # A new secret makes the cached provider token suspect.
    credentials.token_invalidate(provider)
    return provider, created


def suite_register(
    *,
    provider: Provider,
    suite_id: str,
    secret: str,
    callback_token: str,
    encoding_aes_key: str,
    kind: str = Suite.Kind.THIRD_PARTY,
    name: str = "",
) -> tuple[Suite, bool]:
    """Create or update a suite (or 代开发 template); return it and whether it was created."""
    with transaction.atomic():
        suite = Suite.objects.select_for_update().filter(suite_id=suite_id).first()
        created = suite is None
        if suite is None:
            suite = Suite(suite_id=suite_id)
        suite.provider = provider
        suite.kind = kind
        suite.name = name or suite.name
        suite.secret = secret
        suite.callback_token = callback_token
        suite.encoding_aes_key = encoding_aes_key
        suite.save()
    credentials.token_invalidate(suite)
    return suite, created


def callback_urls(
    *, provider: Provider | None = None, suite: Suite | None = None
) -> dict[str, str]:
    """Return the URLs to paste into WeCom's console for a provider or a suite."""
    base = settings.PUBLIC_BASE_URL
    urls: dict[str, str] = {}
    if provider is not None:
        urls["system event URL (系统事件接收URL)"] = f"{base}/callbacks/provider/{provider.corpid}/"
    if suite is not None:
        urls["command URL (指令回调URL)"] = f"{base}/callbacks/suite/{suite.suite_id}/command/"
        urls["data URL (数据回调URL)"] = f"{base}/callbacks/suite/{suite.suite_id}/data/"
        urls["install redirect (安装完成回调)"] = f"{base}/install/{suite.suite_id}/done/"
    return urls


# --- suite ticket -------------------------------------------------------------------


def suite_ticket_store(*, suite_id: str, ticket: str, timestamp: int) -> bool:
    """Store a pushed suite_ticket unless a newer one is stored; return True if stored.

    Compare-and-set on WeCom's TimeStamp: pushes can arrive out of order (retries,
    replays), and an older ticket must never replace a newer one. Two tickets of the
    same second (a manual re-push) are both valid; the later arrival wins.
    """
    suite = Suite.objects.get(suite_id=suite_id)
    holder = Suite(suite_id=suite.suite_id)
    holder.suite_ticket = ticket
    stored = (
        Suite.objects.filter(pk=suite.pk)
        .filter(Q(suite_ticket_timestamp__isnull=True) | Q(suite_ticket_timestamp__lte=timestamp))
        .update(
            suite_ticket_sealed=holder.suite_ticket_sealed,
            suite_ticket_timestamp=timestamp,
            suite_ticket_received_at=timezone.now(),
        )
    )
    if stored:
        # A suite without a usable token gets one as soon as a ticket exists.
        row = credentials.credential_row(suite)
        if not row.value_sealed or row.expires_at is None or row.expires_at <= timezone.now():
            CredentialToken.objects.filter(pk=row.pk).update(
                refresh_after=timezone.now(), refresh_enabled=True
            )
    return bool(stored)
