"""Slack's surfaces: one thin module per feature that parses, calls the service and answers."""
