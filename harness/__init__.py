"""Tools for running the platform for real in tests and benchmarks (never imported by it).

- ``processes``: throwaway PostgreSQL, Redis, PgBouncer, gunicorn and Celery processes;
- ``platform``: the simulator's provider and suites registered in the platform.
"""
