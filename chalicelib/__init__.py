"""StoreLink: the backend of a brand's dealer-network mall inside WeChat."""
