"""Data access, one module per feature: the SQL statements the bot runs are built here."""
