import sys

from pxed.cli.main import main

sys.exit(main())
