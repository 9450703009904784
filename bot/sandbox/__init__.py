"""The sandbox: the real bot, a local Slack Web API and a page that plays Slack's client."""
