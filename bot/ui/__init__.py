"""Block Kit for every surface: limits and helpers, and readers of what Slack sends back."""
