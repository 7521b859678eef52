"""SQLite state: the schema and migrations (``database``) and one row module per object kind."""
