"""North Star: leadership performance contracts, run inside Slack."""
