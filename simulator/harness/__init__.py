"""Entry scripts that run unchanged on CPython and on the `micropython` interpreter."""
