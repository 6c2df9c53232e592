"""task_svc: create, list and get tasks; deliver them to agents (the commands route)."""
