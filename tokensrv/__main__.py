import sys

from tokensrv.cli import main

sys.exit(main())
