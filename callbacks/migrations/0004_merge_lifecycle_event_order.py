# Joins issue 14 (lifecycle event order) with the permission and generation migrations.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('callbacks', '0003_action_permissions'),
        ('callbacks', '0003_lifecycle_event_order'),
    ]

    operations = [
    ]
