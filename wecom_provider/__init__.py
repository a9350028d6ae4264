"""wecom-provider: a multi-tenant platform for a WeCom service provider."""

# Import the Celery app so @shared_task binds to it in every process (Django's convention).
from wecom_provider.celery import app as celery_app

__all__ = ("celery_app",)
