# Joins issue 14 (lifecycle event order) with the permission and generation migrations.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('tenants', '0003_lifecycle_event_order'),
        ('tenants', '0004_merge_permissions_and_generation'),
    ]

    operations = [
    ]
