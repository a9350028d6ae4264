"""Contract shim: the protocol library moved to the top-level package `wecom`.

Only `wecom_provider.wecom.crypto` stays here, because outside checks and deployments import
the callback codec by that name (docs/architecture.md, contracts). New code imports `wecom`.
"""
