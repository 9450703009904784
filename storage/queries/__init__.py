"""Data access, one module per feature: every SQL statement the bot runs is built here."""
