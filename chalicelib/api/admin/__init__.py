"""The back office under /v1/admin: brand, dealer and store tokens."""
