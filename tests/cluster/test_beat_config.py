"""The beat runs under redbeat with a failover inside 60 s; the schedule is defined once."""

import pytest
from django.conf import settings

from wecom_provider.celery import SCHEDULE
from wecom_provider.celery import app
from wecom_provider.celery import beat_schedule


def test_beat_uses_redbeat_with_failover_inside_a_minute():
    conf = app.conf
    assert conf.beat_scheduler == "redbeat.RedBeatScheduler"
    assert conf.redbeat_redis_url == settings.REDIS_URL
    # A standby acquires the lapsed lock at its next try: lock timeout + one loop.
    assert conf.redbeat_lock_timeout > conf.beat_max_loop_interval
    assert conf.redbeat_lock_timeout + conf.beat_max_loop_interval <= 60
    assert conf.redbeat_lock_key.startswith(conf.redbeat_key_prefix)


def test_the_schedule_is_the_one_list_in_celery_py():
    schedule = app.conf.beat_schedule
    assert {name: entry["task"] for name, entry in schedule.items()} == {
        name: task for name, task, _ in SCHEDULE
    }
    for name, _, period in SCHEDULE:
        assert schedule[name]["schedule"] == period  # production: no scale, no override
        assert schedule[name]["options"]["expires"] < period


def test_periods_can_be_shortened_for_tests_only_by_name():
    shortened = beat_schedule(0.01, {"license-reconcile": 4})
    assert shortened["license-reconcile"]["schedule"] == 4
    assert shortened["tokens-refresh-due"]["schedule"] == 1  # 0.6 s, floored at 1 s
    assert shortened["callback-inbox-prune"]["schedule"] == 36
    with pytest.raises(ValueError, match="no beat entries named"):
        beat_schedule(1, {"license-reconcil": 4})
