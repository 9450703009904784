"""Amendments: changes to an active contract, proposed in Slack and decided by its approvers."""
