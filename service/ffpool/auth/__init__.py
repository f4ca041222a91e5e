"""Authentication at the service's edge: API tokens, browser tickets, signed download links.

docs/security.md describes the model; the server edge (ffpool.server) calls `Authenticator`.
"""
