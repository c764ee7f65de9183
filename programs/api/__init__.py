"""notiflow's HTTP API (FastAPI): one router module per domain, assembled by ``app.create_app``."""
