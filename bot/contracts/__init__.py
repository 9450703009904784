"""Contracts: drafts built in Slack, activation, the import format, import and export."""
