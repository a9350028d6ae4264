def test_pinned_secrets_survive_any_number_of_recent_ones():
    from wecom_provider.observability.redaction import SecretRegistry

    registry = SecretRegistry(max_size=16)
    registry.remember("PINNED-PROCESS-SECRET", pin=True)
    registry.remember("EVICTED-TENANT-VALUE-0")
    for index in range(100):
        registry.remember(f"TENANT-VALUE-{index:04d}")
    text = registry.scrub("a PINNED-PROCESS-SECRET b TENANT-VALUE-0099 c EVICTED-TENANT-VALUE-0")
    assert "PINNED-PROCESS-SECRET" not in text
    assert "TENANT-VALUE-0099" not in text
    assert "EVICTED-TENANT-VALUE-0" in text  # bounded: the oldest value was dropped


def test_rebuilt_indexes_do_not_outlive_their_snapshot():
    """Each rebuild compiles a new index; the replaced ones must be freed, not kept alive
    by the re module's pattern cache (hundreds of KB each, per process, for as long as
    tenants keep arriving)."""
    import gc
    import re

    from wecom_provider.observability.redaction import SecretRegistry

    marker = "QZJXWVKQZJ"  # in every indexed prefix, so this registry's indexes are known
    registry = SecretRegistry(max_size=512, max_pending=8, min_length=16)
    for index in range(3000):
        registry.remember(f"{index:06d}{marker}-tenant-secret")
        if index % 8 == 0:
            registry.scrub("a line with nothing to hide")  # rebuilds when enough are pending
    gc.collect()
    # type(), not isinstance(): the heap may hold dead weak proxies, which raise on use.
    patterns = [obj for obj in gc.get_objects() if type(obj) is re.Pattern]
    alive = [p for p in patterns if isinstance(p.pattern, str) and marker in p.pattern]
    assert len(alive) == 1, len(alive)  # the current snapshot's index only
    assert registry.scrub(f"{2990:06d}{marker}-tenant-secret") == "[REDACTED]"
