# Joins issue 20 (API client scopes) with issue 15 (JS-SDK ticket backoff).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('api', '0005_apiclient_scopes'),
        ('api', '0005_jsapi_ticket_backoff'),
    ]

    operations = [
    ]
