"""`python -m gateway.console --config FILE.toml`: a gateway with its console."""
import sys

from gateway.console.serve import main

sys.exit(main())
