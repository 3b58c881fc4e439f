"""The HTTP edge: routes, request parsing and the mapping of errors to statuses."""
