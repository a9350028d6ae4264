"""Give the operator role the paid-app permissions (licensing 0003) on databases whose
roles exist already (fresh databases get them in 0002: licensing 0003 runs before it)."""

from django.db import migrations


def sync(apps, schema_editor):
    from ops.roles import sync_roles

    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0003_webhook_roles"),
        ("licensing", "0003_paid_apps"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
