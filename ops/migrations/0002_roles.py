"""Create the viewer, operator and security admin groups (ops/roles.py).

Runs after every app's permissions migration; ``manage.py sync_roles`` keeps the groups
in line later, when ops/roles.py changes.
"""

from django.db import migrations


def create_roles(apps, schema_editor):
    from ops.roles import sync_roles

    sync_roles(apps)


def drop_roles(apps, schema_editor):
    from ops.roles import OPERATOR
    from ops.roles import SECURITY_ADMIN
    from ops.roles import VIEWER

    apps.get_model("auth", "Group").objects.filter(
        name__in=[VIEWER, OPERATOR, SECURITY_ADMIN]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0001_ops_console"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tenants", "0003_action_permissions"),
        ("api", "0003_action_permissions"),
        ("callbacks", "0003_action_permissions"),
        ("licensing", "0002_action_permissions"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
