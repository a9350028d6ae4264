from tests.ops.fixtures import admin_http  # noqa: F401
from tests.ops.fixtures import day  # noqa: F401
from tests.ops.fixtures import ops_gauges  # noqa: F401
from tests.ops.fixtures import plain_static  # noqa: F401
from tests.ops.fixtures import superuser  # noqa: F401
