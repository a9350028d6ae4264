"""WSGI entry point for gunicorn (`wecom_provider.wsgi:application`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wecom_provider.settings")

application = get_wsgi_application()
