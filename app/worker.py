"""The Celery worker's and beat's entry: `celery -A app.worker worker` / `celery -A app.worker beat`
(deploy/ has the units). The app is made once; each task runs in its application context."""
from app import create_app
from app.jobs import celery  # noqa: F401  (what `-A app.worker` looks for)

flask_app = create_app()
