"""Key creation, anchor export and baseline seals: the custody actions an operator runs by hand."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tamperscope.custody.audit import append_event, utc_now_iso, verify_chain
from tamperscope.custody.keys import Signer, anchor_document, create_key
from tamperscope.custody.seal import TABLES, asset_objects, seal
from tamperscope.errors import IntegrityError, UsageError
from tamperscope.store.models import Asset, AuditHead, Detection
from tamperscope.workspace import Workspace

KEY_ACTION = "key.created"


def create_installation_key(ws: Workspace, *, overwrite: bool = False) -> Signer:
    """Create the signing key and record its public key in the chain (the head is signed from then on)."""
    signer = create_key(ws.settings.resolved_key_path, overwrite=overwrite)
    ws.db.signer = signer
    with ws.db.session() as session:
        append_event(session, action=KEY_ACTION, who=ws.actor,
                     details={"algorithm": "Ed25519", "public_key": signer.public_key})
    return signer


def export_anchor(ws: Workspace) -> dict[str, Any]:
    """The signed current head of an intact chain, as an anchor document; the export itself is then logged."""
    if ws.db.signer is None:
        raise UsageError("no signing key: run `tamperscope key create` first")
    with ws.db.session() as session:
        chain = verify_chain(session)
        if chain.problems:
            raise IntegrityError(chain.problems)
        head = session.get(AuditHead, 1)
        if head is None:
            raise UsageError("the audit log is empty: nothing to anchor")
        anchor = anchor_document(ws.db.signer, head.last_event_id, head.last_hash, utc_now_iso())
        append_event(session, action="anchor.exported", who=ws.actor,
                     details={"event_id": anchor["event_id"], "hash": anchor["hash"]})
    return anchor


def seal_baseline(ws: Workspace) -> int:
    """Seal the evidence of every asset as it is now (databases from before seals existed); returns assets sealed.

    This vouches for the present state: run it once after upgrading, before trusting ``verify``'s rows.
    """
    with ws.db.read_session() as session:
        assets = session.execute(select(Asset.asset_id, Asset.storage_key)).all()
        stages = session.execute(select(Detection.asset_id, Detection.stage).distinct()).all()
    for asset_id, storage_key in assets:
        objects = asset_objects(ws.store, asset_id, storage_key)
        groups = [f"{t}/{asset_id}" for t in TABLES if t != "detections"]
        groups += [f"detections/{a}/{s}" for a, s in stages if a == asset_id]
        with ws.db.session() as session:
            seal(session, who=ws.actor, asset_id=asset_id, groups=groups, objects=objects)
    return len(assets)
