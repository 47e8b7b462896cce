"""The adjudicator: a grpc.aio service that settles visits against state kept in Redis."""
