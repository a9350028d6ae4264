"""Give the ops roles this app's permissions on databases whose roles exist already."""

from django.db import migrations


def sync(apps, schema_editor):
    from ops.roles import sync_roles

    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_subscriptions_and_deliveries"),
        ("ops", "0002_roles"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
