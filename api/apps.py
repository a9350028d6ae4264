from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Internal REST API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from api import schema  # noqa: F401 (registers the OpenAPI auth extension)
        from api.services import jsapi_tickets_invalidate
        from tenants import credentials

        # A tenant's JS-SDK tickets die with its corp token (cancel, reset, suspend).
        if jsapi_tickets_invalidate not in credentials.TENANT_INVALIDATION_HOOKS:
            credentials.TENANT_INVALIDATION_HOOKS.append(jsapi_tickets_invalidate)

        from api.gateway import quotas
        from wecom_provider.observability import metrics

        metrics.register_gauge_callback(
            "wecom_gateway_breakers_open", lambda: len(quotas.breakers_open())
        )
