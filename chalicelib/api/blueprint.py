"""A Chalice Blueprint whose views let every error reach the error middleware.

Chalice turns any exception a view raises into its own 500 body before
middleware runs, except ``ChaliceUnhandledError``. Views registered here wrap
whatever they raise in that type, so ``chalicelib.api.middleware`` can map each
error to the contract's body in one place.
"""
from __future__ import annotations

import functools

from chalice import Blueprint
from chalice.app import ChaliceUnhandledError


class RaisedInView(ChaliceUnhandledError):
    def __init__(self, original: BaseException):
        super().__init__(repr(original))
        self.original = original


class ApiBlueprint(Blueprint):
    def route(self, path: str, **kwargs):
        register = super().route(path, **kwargs)

        def decorator(view):
            @functools.wraps(view)
            def guarded(*args, **kw):
                try:
                    return view(*args, **kw)
                except Exception as exc:  # noqa: BLE001 - handed on, never swallowed
                    raise RaisedInView(exc) from exc

            register(guarded)
            return view

        return decorator
