"""`python -m bot` is the `northstar` command."""

from bot.cli import main

raise SystemExit(main())
