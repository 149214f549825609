"""QR scenes: records <-> the domain's Scene."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.domain.scenes import ACTIVE, RETIRED, Scene, SceneRetired, SceneTokenTaken
from chalicelib.errors import NotFound


class _NewerCard(Exception):
    """The scene already holds this or a newer version of its store's card."""


class SceneRepository:
    def get(self, scene: str) -> Scene | None:
        from chalicelib.db.records import SceneRecord

        record = items.get(SceneRecord, scene)
        return _scene(record) if record else None

    def add(self, scene: Scene) -> None:
        """Written only if no scene has this token (else SceneTokenTaken)."""
        from chalicelib.db.records import SceneRecord

        items.create(scene_record(scene), SceneTokenTaken(scene=scene.scene))

    def refresh_store_card(self, store_id: str) -> int:
        """Copies the store's current card onto every scene bound to it; returns how many
        changed. Each write is conditional on the copy being older, so two refreshes racing
        leave the newest card, whichever finishes last."""
        from chalicelib.db.records import SceneRecord, StoreRecord
        from chalicelib.domain.scenes import store_card

        record = items.get(StoreRecord, store_id)
        if record is None:
            return 0
        card, version = store_card(record), int(record.version or 0)
        changed, start = 0, None
        while True:
            page, start = items.query_page(SceneRecord.by_store, store_id, 100, start)
            for scene in page:
                try:
                    items.update(SceneRecord, (scene.scene,),
                                 [SceneRecord.store_card.set(card), SceneRecord.store_card_version.set(version)],
                                 SceneRecord.scene.exists() & (SceneRecord.store_card_version.does_not_exist()
                                                               | (SceneRecord.store_card_version < version)),
                                 _NewerCard())
                    changed += 1
                except _NewerCard:
                    pass
            if not start:
                return changed

    def retire(self, scene: str, now: float) -> Scene:
        """ACTIVE -> RETIRED, once: a second retirement is SceneRetired (409)."""
        from chalicelib.db.records import SceneRecord

        try:
            record = items.update(SceneRecord, (scene,),
                                  [SceneRecord.status.set(RETIRED), SceneRecord.retired_at.set(now)],
                                  SceneRecord.scene.exists() & (SceneRecord.status == ACTIVE),
                                  SceneRetired(scene=scene))
        except SceneRetired:
            if self.get(scene) is None:
                raise NotFound(f"No scene {scene}.", scene=scene) from None
            raise
        return _scene(record)

    def of_store(self, store_id: str, limit: int, start: dict | None):
        """One page of the scenes bound to a store (a campaign is listed under its first store)."""
        from chalicelib.db.records import SceneRecord

        records, last = items.query_page(SceneRecord.by_store, store_id, limit, start)
        return [_scene(r) for r in records], last


def scene_record(scene: Scene):
    """The record of a new scene (also put inside other repositories' transactions)."""
    from dataclasses import asdict

    from chalicelib.db.records import SceneRecord

    data = {k: v for k, v in asdict(scene).items() if v is not None}
    if scene.store_card is not None:
        data["store_card_version"] = 0   # any later change of the store refreshes it
    return SceneRecord(**data)


def _scene(r) -> Scene:
    return Scene(scene=r.scene, kind=r.kind, brand_id=r.brand_id, store_id=r.store_id, dealer_id=r.dealer_id,
                 staff_id=r.staff_id, sku=r.sku, promoter_customer_id=r.promoter_customer_id,
                 campaign=r.campaign, welcome=r.welcome, store_card=r.store_card, status=r.status, created_at=float(r.created_at),
                 retired_at=float(r.retired_at) if r.retired_at is not None else None)
