"""SkyWalking's GraphQL query protocol (pprof and the metadata queries around it) over the
same use cases as the REST API."""
