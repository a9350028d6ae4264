from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and credentials"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from wecom_provider.fieldcrypt import on_unseal
        from wecom_provider.observability import remember_secret

        # Every secret opened in this process is scrubbed from its log lines by value,
        # on top of the key-based redaction patterns.
        on_unseal(remember_secret)
