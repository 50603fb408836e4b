"""The store: SQLAlchemy 2 async Core, Alembic migrations."""

from monitor.store.engine import Store

__all__ = ["Store"]
