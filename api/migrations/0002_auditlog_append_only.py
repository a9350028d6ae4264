"""The audit log is append-only in the database too: UPDATE and DELETE are refused.

TRUNCATE (used by test database flushes) is a separate statement-level event and stays
allowed; it needs table ownership, which the application role should not have in
production.
"""

from django.db import migrations

POSTGRES_UP = [
    """CREATE OR REPLACE FUNCTION api_auditlog_append_only() RETURNS trigger AS $$
       BEGIN
           RAISE EXCEPTION 'api_auditlog is append-only (% refused)', TG_OP;
       END;
       $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER api_auditlog_append_only
       BEFORE UPDATE OR DELETE ON api_auditlog
       FOR EACH ROW EXECUTE FUNCTION api_auditlog_append_only()""",
]
POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS api_auditlog_append_only ON api_auditlog",
    "DROP FUNCTION IF EXISTS api_auditlog_append_only()",
]
SQLITE_UP = [
    """CREATE TRIGGER api_auditlog_no_update BEFORE UPDATE ON api_auditlog
       BEGIN SELECT RAISE(ABORT, 'api_auditlog is append-only (UPDATE refused)'); END""",
    """CREATE TRIGGER api_auditlog_no_delete BEFORE DELETE ON api_auditlog
       BEGIN SELECT RAISE(ABORT, 'api_auditlog is append-only (DELETE refused)'); END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS api_auditlog_no_update",
    "DROP TRIGGER IF EXISTS api_auditlog_no_delete",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        )
    ]
