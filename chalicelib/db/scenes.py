"""QR scenes: records <-> the domain's Scene."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.domain.scenes import ACTIVE, RETIRED, Scene, SceneRetired, SceneTokenTaken
from chalicelib.errors import NotFound


class SceneRepository:
    def get(self, scene: str) -> Scene | None:
        from chalicelib.db.records import SceneRecord

        record = items.get(SceneRecord, scene)
        return _scene(record) if record else None

    def add(self, scene: Scene) -> None:
        """Written only if no scene has this token (else SceneTokenTaken)."""
        from chalicelib.db.records import SceneRecord

        data = {k: v for k, v in scene.to_json().items() if v is not None}
        items.create(SceneRecord(**data), SceneTokenTaken(scene=scene.scene))

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


def _scene(r) -> Scene:
    return Scene(scene=r.scene, kind=r.kind, brand_id=r.brand_id, store_id=r.store_id, dealer_id=r.dealer_id,
                 staff_id=r.staff_id, sku=r.sku, promoter_customer_id=r.promoter_customer_id,
                 campaign=r.campaign, welcome=r.welcome, status=r.status, created_at=float(r.created_at),
                 retired_at=float(r.retired_at) if r.retired_at is not None else None)
