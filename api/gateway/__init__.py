"""The WeCom API gateway: products call a tenant's corp APIs through the platform.

``/api/v1/suites/<suite_id>/corps/<corpid>/wecom/<path>`` forwards GET and POST to
WeCom's ``/cgi-bin/<path>`` with the tenant's corp token (docs/gateway.md):

- ``policy``: the client's allowlist of path patterns, quota settings, which keys a
  call counts against;
- ``quotas``: the Redis counters and breakers every process shares;
- ``forward``: one call, end to end (quota, token, WeCom, refresh, retries, breaker);
- ``media``: multipart uploads spooled to disk, binary downloads streamed;
- ``views``: the DRF view, its OpenAPI description and the audit detail.

The protocol side (path validation, the retry rules, the pass-through transport) is
``wecom.gateway``.
"""
