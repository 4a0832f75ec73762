"""HTTP endpoints over the models the graph publishes (FastAPI + uvicorn): ``python -m finsec_assets.serve``.

``app.create_app()`` builds the service; ``registry`` knows where models are published, ``manager``
polls for new versions and swaps them in, ``batching`` gathers concurrent requests, ``models`` wraps
each loaded model around the same library function the graph uses. No dagster import anywhere here.
"""
