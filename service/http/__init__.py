"""What stands between a client and the service: limits and deadlines on heads and
bodies, bearer tokens, request accounting, error answers, and the OpenAPI document."""
