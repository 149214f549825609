"""Clients for WeChat's servers. The local sandbox speaks the same protocols, so
only the base URL differs between the sandbox and the real provider."""
