"""Write the synthetic demo dataset; see ``segkit.cli.make_demo_data``."""
from segkit.cli.make_demo_data import main

raise SystemExit(main())
