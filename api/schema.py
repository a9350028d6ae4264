"""drf-spectacular extension: document ApiKeyAuthentication as HTTP bearer auth."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "wcp_<prefix>_<secret>",
            "description": "An API key from `manage.py create_api_client`.",
        }
