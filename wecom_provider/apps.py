from django.apps import AppConfig


class WecomProviderConfig(AppConfig):
    """The project package as an app: it carries management commands, no models."""

    name = "wecom_provider"
    verbose_name = "WeCom provider platform"
