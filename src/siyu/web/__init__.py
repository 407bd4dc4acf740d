"""The FastAPI application: JSON API under /api, server-rendered pages elsewhere."""
