"""Helpers for the gateway tests: tenants of both kinds, callers, the simulator's counters."""

from __future__ import annotations

from dataclasses import dataclass

from tests.api.conftest import Caller
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path

SEED_PATHS = (
    "user/*",
    "department/list",
    "tag/list",
    "batch/*",
    "externalcontact/*",
    "message/send",
    "media/*",
    "get_jsapi_ticket",
    "ticket/get",
)


@dataclass
class Tenant:
    """An installed tenant, a caller allowed the seed paths, and the simulator's view."""

    authorization: object
    caller: Caller
    corp: dict  # the simulator's corp config (users with their ids)
    platform: object

    def url(self, path: str) -> str:
        return tenant_path(self.authorization, f"wecom/{path}")

    def get(self, path: str, **params):
        return self.caller.get(self.url(path), params)

    def post(self, path: str, body=None, **extra):
        return self.caller.post(self.url(path), body if body is not None else {}, **extra)

    def upload(self, media_type: str, name: str, data: bytes, content_type: str):
        """POST media/upload the way a product does: multipart, the file in ``media``."""
        from django.core.files.uploadedfile import SimpleUploadedFile

        media = SimpleUploadedFile(name, data, content_type=content_type)
        return self.caller.http.post(
            f"{self.url('media/upload')}?type={media_type}", {"media": media}
        )

    @property
    def userid(self) -> str:
        return self.corp["users"][0]["userid"]

    @property
    def hits(self) -> int:
        """Every request the simulator received outside its control API."""
        return self.platform.sandbox.state.http_hits

    def requests(self, endpoint: str | None = None) -> list[dict]:
        return self.platform.requests(endpoint)


def gateway_tenant(
    platform, *, corp_index: int = 0, customized: bool = False, paths=SEED_PATHS, name=None
) -> Tenant:
    suite = platform.template if customized else platform.suite
    authorization = install(platform, corp_index, suite=suite)
    caller = make_caller(
        name or f"gw-{suite.suite_id}-{corp_index}", suites=[suite], wecom_paths=paths
    )
    return Tenant(authorization, caller, platform.corps[corp_index], platform)
