"""People as Slack knows them: whether they can take a part, their time zones, reachability."""
