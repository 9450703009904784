"""What every feature shares and nothing Slack: the calendar, the clock, rules, progress, text."""
