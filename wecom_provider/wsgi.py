"""WSGI entry point for gunicorn (`wecom_provider.wsgi:application`) and runserver.

WeCom's callback URLs (``/callbacks/…``) are answered by their own Django handler
that runs only ``settings.CALLBACK_MIDDLEWARE`` and resolves against
``settings.CALLBACK_URLCONF``. They are machine-to-machine calls
with a hard deadline (WeCom waits 1 s for auth events): sessions, users, CSRF,
messages, static files and the admin login throttle have nothing to do there, and
running them cost a third of each callback's CPU. Every other URL gets the full
``settings.MIDDLEWARE``. Both handlers share settings, URLconf, views and signals.
"""

from __future__ import annotations

import os

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wecom_provider.settings")

CALLBACK_PREFIX = "/callbacks/"


class LeanWSGIHandler(WSGIHandler):
    """A Django WSGI handler that runs the given middleware instead of settings.MIDDLEWARE."""

    def __init__(self, middleware: list[str], urlconf: str) -> None:
        self.middleware_paths = list(middleware)
        self.urlconf = urlconf
        super().__init__()  # calls load_middleware()

    def get_response(self, request):
        request.urlconf = self.urlconf  # resolve_request() and reverse() use it
        return super().get_response(request)

    def load_middleware(self, is_async: bool = False) -> None:
        # Django's own loader, minus async adaptation and MiddlewareNotUsed (neither is
        # needed by the short list this handler runs).
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(self.middleware_paths):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler


class CallbackRouter:
    """Send ``/callbacks/…`` to the lean handler and everything else to the full one."""

    def __init__(self, default, callbacks) -> None:
        self.default = default
        self.callbacks = callbacks

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(CALLBACK_PREFIX):
            return self.callbacks(environ, start_response)
        return self.default(environ, start_response)


def build_application() -> CallbackRouter:
    from django.conf import settings

    default = get_wsgi_application()  # django.setup() first
    callbacks = LeanWSGIHandler(settings.CALLBACK_MIDDLEWARE, settings.CALLBACK_URLCONF)
    return CallbackRouter(default, callbacks)


application = build_application()
