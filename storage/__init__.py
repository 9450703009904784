"""Storage: the engine and sessions, the tables, their migrations, and every query."""
