import sys

from host_sync.cli import main

sys.exit(main())
