"""Bench-only settings: production settings plus the bare view's URLconfs (bench/support/).

Selected with DJANGO_SETTINGS_MODULE=bench.support.settings by bench/callbacks.py only.
"""

from wecom_provider.settings import *  # noqa: F403

ROOT_URLCONF = "bench.support.urls"
CALLBACK_URLCONF = "bench.support.callback_urls"
