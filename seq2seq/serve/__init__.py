"""``seq2seq serve``: trained runs behind an HTTP API with dynamic batching (api.py).

Needs the ``serve`` extra (FastAPI and uvicorn): ``pip install -e ".[serve]"``."""
