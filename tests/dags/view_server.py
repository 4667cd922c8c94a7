"""The Shears view in a real HTTP server process, for tests that measure the server (memory while streaming).

`python -m tests.dags.view_server PORT` serves plugins/shears_web.py's app at /shears on 127.0.0.1:PORT with
Airflow's login dependency replaced (the routes and the store are under test, not the login), reading
$SHEARS_STORE like the API server does.
"""

from __future__ import annotations

import sys


def main() -> None:
    import uvicorn
    from fastapi import FastAPI

    from tests.dags.airflow_env import PLUGINS

    sys.path.append(str(PLUGINS))
    from shears_web import create_app, require_reader

    sub = create_app()
    sub.dependency_overrides[require_reader] = lambda: None
    root = FastAPI()
    root.mount("/shears", sub)
    uvicorn.run(root, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()
