"""Development server: `make run` (or `python run.py --port 5000`). Production runs
`gunicorn 'run:app'` with GONGJIAN_CONFIG=production (see README)."""
import argparse
import gc
import os

from app import create_app

app = create_app()
# The server's collector: what start-up made (the app, its mappers, views, translations) lives as
# long as the process, so full collections leave it out; and young collections run every 5,000
# allocations instead of 700 — a page or an export made in Python allocates rows by the
# hundred thousand, and the default collector took a third of an export's time (bench/README.md).
gc.freeze()
gc.set_threshold(5000, 10, 10)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 5000)))
    args = parser.parse_args()
    from seed.demo import print_logins

    print_logins(f"http://127.0.0.1:{args.port}/")
    app.run(host="127.0.0.1", port=args.port, debug=False)
