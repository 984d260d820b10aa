"""``python -m devicebench``."""

from devicebench.cli import main

raise SystemExit(main())
