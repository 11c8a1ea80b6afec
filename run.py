"""Development server: `make run` (or `python run.py --port 5000`). Production runs
`gunicorn 'run:app'` with GONGJIAN_CONFIG=production (see README)."""
import argparse
import os

from app import create_app, tune_collector

app = create_app()
tune_collector()

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args()
    from seed.demo import print_logins

    print_logins(f"http://127.0.0.1:{args.port}/")
    app.run(host="127.0.0.1", port=args.port, debug=False)
