"""ClickHouse adapters: the client (chDB embedded or a server), migrations."""
