"""gunicorn config for `bench/callbacks.py --profile DIR`: cProfile (CPU time) per worker.

Only request handling is profiled (pre_request → post_request), not start-up; each
worker writes DIR/worker-<pid>.prof when it exits.
"""

import cProfile
import os
import time

_profile: cProfile.Profile | None = None


def post_fork(server, worker) -> None:
    global _profile
    _profile = cProfile.Profile(time.process_time)


def pre_request(worker, req) -> None:
    if _profile is not None:
        _profile.enable()


def post_request(worker, req, environ, resp) -> None:
    if _profile is not None:
        _profile.disable()


def worker_exit(server, worker) -> None:
    if _profile is not None:
        directory = os.environ["BENCH_PROFILE_DIR"]
        _profile.dump_stats(os.path.join(directory, f"worker-{os.getpid()}.prof"))
