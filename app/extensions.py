"""The shared objects, created unbound and initialised by `create_app` (as Superset does)."""
from flask_appbuilder import AppBuilder, Model
from flask_appbuilder.models.sqla.base import SQLA
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

# Bound to FAB's Model so that db.metadata *is* Model.metadata: one metadata for our tables
# and FAB's ab_* tables, which Alembic owns.
db = SQLA(model_class=Model)
appbuilder = AppBuilder(update_perms=False)
migrate = Migrate()
csrf = CSRFProtect()
