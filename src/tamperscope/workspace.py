"""A workspace bundles the settings, the database and the object store that every edge (CLI, API) uses."""

from __future__ import annotations

from dataclasses import dataclass

from tamperscope.custody.objectstore import ObjectStore
from tamperscope.errors import StoreError
from tamperscope.settings import Settings, load_settings
from tamperscope.store.db import Database


@dataclass
class Workspace:
    settings: Settings
    db: Database
    store: ObjectStore

    @classmethod
    def open(cls, settings: Settings | None = None, *, upgrade: bool = True) -> Workspace:
        """Open (and by default migrate) the database and the store named by ``settings``."""
        settings = settings or load_settings()
        settings.home.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_db_url, busy_timeout_s=settings.custody.busy_timeout_s,
                      busy_retries=settings.custody.busy_retries)
        if upgrade:
            db.upgrade()
        from tamperscope.custody.keys import load_key

        db.signer = load_key(settings.resolved_key_path)
        store = ObjectStore(settings.resolved_store_url, settings.store)
        ws = cls(settings=settings, db=db, store=store)
        store.on_error = ws.record_store_error
        return ws

    @property
    def actor(self) -> str:
        from tamperscope.custody.audit import default_actor

        return self.settings.actor or default_actor()

    def record_store_error(self, error: StoreError) -> None:
        """Audit a failed store call (``store.failed``), in its own transaction: the failure is evidence too."""
        from tamperscope.custody.audit import append_event

        with self.db.session() as session:
            append_event(session, action="store.failed", who=self.actor,
                         details={"reason": error.reason.value, "operation": error.operation, "key": error.key,
                                  "store": self.store.url, "message": error.message[:500]})

    def close(self) -> None:
        self.db.dispose()
