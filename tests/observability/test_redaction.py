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
