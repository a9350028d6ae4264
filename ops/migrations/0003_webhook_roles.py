"""Give the ops roles the webhooks app's permissions on databases whose roles exist
already (fresh databases get them in 0002: webhooks 0001 runs before it)."""

from django.db import migrations


def sync(apps, schema_editor):
    from ops.roles import sync_roles

    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0002_roles"),
        ("webhooks", "0001_subscriptions_and_deliveries"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
