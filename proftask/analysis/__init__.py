"""Reading the read models: the analysis and progress queries and the selection of a task's
profiles, shared by query_svc (HTTP) and graphql_svc."""
