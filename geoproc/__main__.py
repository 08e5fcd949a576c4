import sys

from geoproc.cli import main

sys.exit(main())
