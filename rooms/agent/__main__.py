"""``python -m rooms.agent --server URL --token TOKEN``: the terminal agent alone."""

from rooms.agent.cli import main

raise SystemExit(main())
