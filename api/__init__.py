"""The internal REST API (``/api/v1/``) for the platform's own products.

- Authentication: ``Authorization: Bearer wcp_<prefix>_<secret>`` (``authentication.py``);
  keys are stored as SHA-256 digests, read from the database on every request, so
  revocation and expiry act on the next request. Clients hold at most two usable keys.
- Scope (``selectors.py``): a client's suites (every corp of them) and corps (those only);
  every tenant lookup is scoped; out of scope answers exactly like "does not exist".
- Audit (``models.AuditLog``): token and secret-adjacent reads and every write; append-only
  (admin view-only, database trigger).
- Rate limit (``throttling.py``): per client, fixed one-minute window in Redis (Lua).
- Errors (``exceptions.py``): one shape, ``{"error": {"code", "message", "details"}}``.
- Schema at ``/api/schema/``, Swagger UI (local assets) at ``/api/docs/``.
"""
