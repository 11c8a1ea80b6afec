"""Development server: `make run` (or `python run.py --port 5000`). Production runs
`gunicorn 'run:app'` with GONGJIAN_CONFIG=production (see README)."""
import argparse
import os

from app import create_app, tune_collector
from app.ops import compile_templates

app = create_app()
# Every template compiled here, before gunicorn's master forks its workers (preload_app), and
# frozen with the rest: a worker compiled a page's templates on its first request of that page
# (the dashboard's fourteen: 0.2 s of its first board under cProfile); the 123 take ~0.5 s of
# CPU once.
compile_templates(app)
tune_collector()

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args()
    from seed.demo import print_logins

    print_logins(f"http://127.0.0.1:{args.port}/")
    app.run(host="127.0.0.1", port=args.port, debug=False)
