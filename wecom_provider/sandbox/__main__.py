import sys

from wecom_provider.sandbox.server import main

sys.exit(main())
