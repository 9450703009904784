"""`python -m bot` is the `northstar` command."""

from bot.cli.main import main

raise SystemExit(main())
