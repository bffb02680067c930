import sys

from examples.orders.app import main

sys.exit(main())
