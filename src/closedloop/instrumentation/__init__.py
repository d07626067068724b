"""What the instrumentations share: span attribute names, the call context, settings, user
counting and the registry of traced objects.

Internal, except the ``openai`` subpackage (``closedloop.instrumentation.openai``, the
instrumentor): apps use these through ``closedloop`` and ``closedloop.feedback``.
"""

__all__: list[str] = []
