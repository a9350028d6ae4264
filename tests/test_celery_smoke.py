"""A task round-trips through the real Redis broker and a real worker process."""

import uuid

from tests.support import celery_worker
from tests.support import django_env
from wecom_provider.celery import app
from wecom_provider.celery import ping


def test_ping_round_trips_through_broker_and_worker():
    with celery_worker(env=django_env()):
        token = uuid.uuid4().hex
        result = ping.delay(token)
        assert result.get(timeout=60) == token


def test_celery_is_configured_for_reliability():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is False  # opted into per idempotent task, never globally
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit
    assert conf.task_soft_time_limit < conf.task_time_limit
    visibility = conf.broker_transport_options["visibility_timeout"]
    from django.conf import settings

    assert visibility > settings.CELERY_MAX_COUNTDOWN
    assert visibility > conf.task_time_limit


def test_tasks_published_by_name_are_registered_under_that_name():
    """callbacks/queue.py and webhooks publish by name (wecom_provider/broker.py)."""
    from callbacks import queue
    from callbacks import tasks as callback_tasks
    from tenants import services as tenant_services
    from tenants import tasks as tenant_tasks
    from webhooks import services as webhook_services
    from webhooks import tasks as webhook_tasks

    app.loader.import_default_modules()
    for name, task in (
        (queue.PROCESS_TASK, callback_tasks.process_callback),
        (queue.PROCESS_BATCH_TASK, callback_tasks.process_callbacks),
        (webhook_services.DELIVER_BATCH_TASK, webhook_tasks.deliver_batch),
        (webhook_services.DELIVER_TASK, webhook_tasks.deliver),
        (tenant_services.INSTALL_FOLLOW_UP_TASK, tenant_tasks.install_follow_up),
    ):
        # shared_task hands out a proxy; the registry holds the task itself.
        assert app.tasks[name] is task._get_current_object()
