"""Small factories for tenant rows with known (seeded) secrets."""

from __future__ import annotations

import base64
import itertools
import os

from tenants import services
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Provider
from tenants.models import Suite

_counter = itertools.count(1)


def aes_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()[:43]


def seeded(label: str) -> str:
    """Return a unique, recognisable secret value to search for in dumps and logs."""
    return f"SEEDED{label.upper()}{next(_counter):04d}{os.urandom(6).hex()}"


def make_provider(**overrides) -> Provider:
    values = {
        "corpid": f"wwprovider{next(_counter)}",
        "provider_secret": seeded("provsecret"),
        "callback_token": "tok" + os.urandom(4).hex(),
        "encoding_aes_key": aes_key(),
    }
    values.update(overrides)
    provider, _ = services.provider_register(**values)
    return provider


def make_suite(provider: Provider | None = None, **overrides) -> Suite:
    values = {
        "provider": provider or make_provider(),
        "suite_id": f"wwsuite{next(_counter)}",
        "secret": seeded("suitesecret"),
        "callback_token": "tok" + os.urandom(4).hex(),
        "encoding_aes_key": aes_key(),
    }
    values.update(overrides)
    suite, _ = services.suite_register(**values)
    return suite


def make_authorization(suite: Suite | None = None, **overrides) -> Authorization:
    suite = suite or make_suite()
    corp = Corp.objects.create(corpid=overrides.pop("corpid", f"wpcorp{next(_counter)}"))
    authorization = Authorization(suite=suite, corp=corp, **overrides)
    authorization.permanent_code = seeded("permcode")
    authorization.save()
    return authorization
