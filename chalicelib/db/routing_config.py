"""The brand's routing configuration, on the brand's item (``routing_settings``), with a
version that every change is conditional on and moves on by one (two changes read
apart cannot overwrite each other unseen: the second is a 409)."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.domain.routing_config import RoutingSettings, check_settings
from chalicelib.errors import Conflict, NotFound


class _ConditionFailed(Exception):
    pass


class RoutingConfigRepository:
    def get_settings(self, brand_id: str) -> RoutingSettings:
        """The brand's settings; the defaults when it never set any (or is unknown)."""
        return self.settings_and_version(brand_id)[0]

    def settings_and_version(self, brand_id: str) -> tuple[RoutingSettings, int]:
        from chalicelib.db.records import BrandRecord

        record = items.get(BrandRecord, brand_id)
        version = int(record.routing_version or 0) if record else 0
        if record is None or record.routing_settings is None:
            return RoutingSettings(), version
        return check_settings(record.routing_settings), version

    def put_settings(self, brand_id: str, settings: RoutingSettings, expected_version: int) -> int:
        """Store the settings over ``expected_version``; the new version."""
        from chalicelib.db.records import BrandRecord

        seen = (BrandRecord.routing_version.does_not_exist() | (BrandRecord.routing_version == 0)
                if expected_version == 0 else BrandRecord.routing_version == expected_version)
        try:
            record = items.update(BrandRecord, (brand_id,),
                                  [BrandRecord.routing_settings.set(settings.to_json()),
                                   BrandRecord.routing_version.add(1)],
                                  BrandRecord.brand_id.exists() & seen, _ConditionFailed())
        except _ConditionFailed:
            if items.get(BrandRecord, brand_id) is None:
                raise NotFound(f"No brand {brand_id}.", brand_id=brand_id) from None
            raise Conflict("The routing configuration changed meanwhile; reload and try again.") from None
        return int(record.routing_version)
