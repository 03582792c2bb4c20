import sys

from pxed.cli import main

sys.exit(main())
