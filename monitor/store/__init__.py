"""The store (DESIGN section 7): SQLAlchemy 2 async Core, Alembic migrations."""

from monitor.store.engine import Store

__all__ = ["Store"]
