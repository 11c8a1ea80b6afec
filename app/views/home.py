"""The landing page after login (the to-do list comes with the dashboards issue)."""
from flask_appbuilder import IndexView, expose

from app.security.roles import ROLE_LABELS


class HomeView(IndexView):
    index_template = "gongjian/index.html"

    @expose("/")
    def index(self):
        return self.render_template(self.index_template, appbuilder=self.appbuilder,
                                    role_labels=ROLE_LABELS)
