"""The period report: each contract's figures for a quarter, month or year."""
