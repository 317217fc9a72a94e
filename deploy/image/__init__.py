"""The one production image: its Dockerfile and `make image` (build.py)."""
