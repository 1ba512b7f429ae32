"""Which engine a database location names: a SQLite path (the embedded default) or
a postgresql:// URL (cluster mode). A leaf module: the SQLite side (store, console
db, vehicle registry, log reader) asks it without importing the log's store."""


def is_postgres_url(location):
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))
