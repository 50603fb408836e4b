import sys

from capmon.cli import main

sys.exit(main())
