"""The demo world: one brand, three dealers, ten stores in Chengdu and Wuhan (real
coordinates), twenty SKUs with stock in the cloud warehouse and some stores.

Seeded idempotently: every item is written only if absent, so a restart neither
duplicates nor resets anything (stock sold in a demo stays sold).
"""
from __future__ import annotations

BRAND = {"brand_id": "brand-lumen", "name": "Lumen Computers"}

DEALERS = [
    {"dealer_id": "dealer-shu", "name": "Shu Digital (Chengdu)", "sub_mchid": "1900001001"},
    {"dealer_id": "dealer-chu", "name": "Chu Tech (Wuhan)", "sub_mchid": "1900001002"},
    {"dealer_id": "dealer-yangtze", "name": "Yangtze Retail (Chengdu & Wuhan)", "sub_mchid": "1900001003"},
]

_ALL_DAY = {d: [["10:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
_OFFICE = {**{d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
           "sat": [["10:00", "16:00"]]}

STORES = [
    # Chengdu
    {"store_id": "store-cd-chunxi", "dealer_id": "dealer-shu", "city": "Chengdu",
     "name": "Chunxi Road flagship", "address": "Chunxi Road, Jinjiang District",
     "lat": 30.6570, "lng": 104.0807, "services": ["pickup", "delivery_3h", "repair", "trial"],
     "opening_hours": _ALL_DAY},
    {"store_id": "store-cd-tianfu", "dealer_id": "dealer-shu", "city": "Chengdu",
     "name": "Tianfu Square", "address": "Tianfu Square, Qingyang District",
     "lat": 30.6574, "lng": 104.0659, "services": ["pickup", "delivery_3h"],
     "opening_hours": _ALL_DAY},
    {"store_id": "store-cd-softpark", "dealer_id": "dealer-shu", "city": "Chengdu",
     "name": "Tianfu Software Park", "address": "Tianfu Avenue, High-tech Zone",
     "lat": 30.5472, "lng": 104.0686, "services": ["pickup", "installation", "repair"],
     "opening_hours": _OFFICE},
    {"store_id": "store-cd-wuhou", "dealer_id": "dealer-yangtze", "city": "Chengdu",
     "name": "Wuhou Temple", "address": "Wuhouci Street, Wuhou District",
     "lat": 30.6453, "lng": 104.0493, "services": ["pickup", "trial"],
     "opening_hours": _ALL_DAY},
    {"store_id": "store-cd-east", "dealer_id": "dealer-yangtze", "city": "Chengdu",
     "name": "Chengdu East Station", "address": "Chengdu East Railway Station, Chenghua District",
     "lat": 30.6294, "lng": 104.1424, "services": ["pickup", "delivery_3h", "installation"],
     "opening_hours": _ALL_DAY},
    # Wuhan
    {"store_id": "store-wh-jianghan", "dealer_id": "dealer-chu", "city": "Wuhan",
     "name": "Jianghan Road", "address": "Jianghan Road Pedestrian Street, Jianghan District",
     "lat": 30.5800, "lng": 114.2870, "services": ["pickup", "delivery_3h", "repair", "trial"],
     "opening_hours": _ALL_DAY},
    {"store_id": "store-wh-optics", "dealer_id": "dealer-chu", "city": "Wuhan",
     "name": "Optics Valley Plaza", "address": "Optics Valley Square, Hongshan District",
     "lat": 30.5062, "lng": 114.3986, "services": ["pickup", "installation", "repair"],
     "opening_hours": _ALL_DAY},
    {"store_id": "store-wh-tiandi", "dealer_id": "dealer-chu", "city": "Wuhan",
     "name": "Wuhan Tiandi", "address": "Zhongshan Avenue, Jiang'an District",
     "lat": 30.6030, "lng": 114.3060, "services": ["pickup", "trial"],
     "opening_hours": _OFFICE},
    {"store_id": "store-wh-hankou", "dealer_id": "dealer-chu", "city": "Wuhan",
     "name": "Hankou Station", "address": "Hankou Railway Station, Jianghan District",
     "lat": 30.6183, "lng": 114.2548, "services": ["pickup", "delivery_3h"],
     "opening_hours": _ALL_DAY},
    {"store_id": "store-wh-chuhe", "dealer_id": "dealer-yangtze", "city": "Wuhan",
     "name": "Chuhe Han Street", "address": "Chuhe Han Street, Wuchang District",
     "lat": 30.5600, "lng": 114.3430, "services": ["pickup", "delivery_3h", "installation", "repair"],
     "opening_hours": _ALL_DAY},
]

# sku, name, category, price (fen), cost (fen): cost + commissions stay below price
PRODUCTS = [
    ("LM-NB14-I5", "AirBook 14 i5 16G/512G", "laptop", 499900, 429900),
    ("LM-NB14-I7", "AirBook 14 i7 32G/1T", "laptop", 649900, 559900),
    ("LM-NB16-G", "Legend 16 gaming laptop", "laptop", 899900, 779900),
    ("LM-NB13-X", "ThinAir 13 business ultrabook", "laptop", 759900, 654900),
    ("LM-DT-TOWER", "Tower desktop i5", "desktop", 429900, 369900),
    ("LM-DT-AIO27", "All-in-one 27\"", "desktop", 599900, 514900),
    ("LM-TAB11", "Pad 11 Wi-Fi 128G", "tablet", 179900, 152900),
    ("LM-TAB11-PEN", "Pad pen", "tablet", 49900, 39900),
    ("LM-MON27-4K", "27\" 4K monitor", "monitor", 229900, 195900),
    ("LM-MON24", "24\" office monitor", "monitor", 89900, 74900),
    ("LM-KB-MECH", "Mechanical keyboard", "accessory", 39900, 31900),
    ("LM-MS-WL", "Wireless mouse", "accessory", 9900, 7500),
    ("LM-HS-ANC", "Noise-cancelling headset", "audio", 79900, 64900),
    ("LM-EB-TWS", "True wireless earbuds", "audio", 29900, 23900),
    ("LM-DOCK-C", "USB-C dock", "accessory", 59900, 47900),
    ("LM-PWR-65", "65W GaN charger", "accessory", 14900, 11500),
    ("LM-RT-AX3000", "Wi-Fi 6 router AX3000", "network", 34900, 27900),
    ("LM-SSD-1T", "1TB NVMe SSD", "storage", 49900, 40900),
    ("LM-BAG-15", "15\" backpack", "accessory", 19900, 14900),
    ("LM-WTY-2Y", "2-year extended warranty", "service", 39900, 29900),
]

WAREHOUSE_LOCATION = "warehouse:cloud"


def warehouse_stock(sku: str) -> int:
    return 200 + 37 * (sum(map(ord, sku)) % 9)


def store_stock(store_index: int, product_index: int) -> int:
    """Flagship-ish stores carry more; every store carries a few popular items."""
    if (store_index + product_index) % 3 == 0:
        return 3 + (store_index * 7 + product_index) % 8
    return 0
