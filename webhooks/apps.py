"""Signed webhooks for products: the event feed, pushed (see webhooks/services.py).

Sits above api (subscriptions belong to API clients) and reacts to tenants' feed
through its publish hook: nothing below imports this app.
"""

from __future__ import annotations

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenants import feed
        from webhooks import selectors
        from webhooks.services import feed_published
        from wecom_provider.observability import metrics

        if feed_published not in feed.PUBLISH_HOOKS:
            feed.PUBLISH_HOOKS.append(feed_published)
        metrics.register_gauge_callback(
            "wecom_webhook_deliveries_pending", selectors.deliveries_pending_count
        )
        metrics.register_gauge_callback(
            "wecom_webhook_subscriptions", selectors.subscription_state_counts
        )
