"""The ops app owns no table; this unmanaged model only carries its permissions."""

from __future__ import annotations

from django.db import models


class OpsConsole(models.Model):
    """Anchor for console-wide permissions (no table: ``managed = False``)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", "Can view the operations dashboard"),
            ("rotate_keys", "Can rotate and retire field-encryption keys"),
        ]

    def __str__(self) -> str:
        return "ops console"
