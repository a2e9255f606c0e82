"""`python -m mmlib ...`: see `mmlib.cli`."""

from mmlib.cli import main

raise SystemExit(main())
