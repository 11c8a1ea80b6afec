"""The pages every supervised task shares (app/models/supervision.py): its page lists its notes
in order and offers to add one (a supervision note, or the lead unit's progress report)."""
from sqlalchemy import select

from app.models.supervision import TaskStatus
from app.views.base import EntityView
from app.views.fields import required

NOTE_COLUMNS = ["note_date", "kind", "unit", "content", "progress", "author"]


def _flag(text):
    return lambda value: text if value else ""


def _names(rows):
    return "、".join(str(row) for row in rows or ())


class SupervisedView(EntityView):
    """Base of a supervised task's page: its notes' model is the one its `notes` point at."""

    show_template = "supervision/task_show.html"
    base_order = ("open_first", "asc")  # the model's __orders__
    formatters_columns = {"overdue": _flag("逾期"), "co_units": _names}

    def _show(self, pk):
        widgets = super()._show(pk)
        note = self.model.__mapper__.relationships["notes"].mapper.class_
        key = getattr(note, note.__mapper__.relationships[note.__task__].local_columns.copy().pop().key)
        widgets["notes"] = self.datamodel.session.execute(
            select(note).where(key == pk).order_by(note.note_date, note.id)).scalars().all()
        widgets["can_note"] = (self.appbuilder.sm.has_access("can_add", note.__tablename__)
                               and self.datamodel.get(pk).status != TaskStatus.DONE)
        widgets["note_url"] = f"/{note.__tablename__}/add?_flt_0_{note.__task__}={pk}"
        return widgets


class ProgressNoteView(EntityView):
    """Base of a supervised task's notes page: its columns name the note's task (`__task__`)."""

    edit_columns = ["note_date", "content", "progress", "author"]
    order_columns = ["note_date", "progress"]
    base_order = ("note_date", "desc")
    validators_columns = {"content": required("督办情况/办理进展"), "note_date": required("日期")}

    @classmethod
    def declare(cls, model) -> None:
        task = model.__task__
        cls.list_columns = [task, *NOTE_COLUMNS]
        cls.show_columns = [task, *NOTE_COLUMNS, "created_on", "changed_on"]
        cls.add_columns = [task, "note_date", "content", "progress", "unit", "author"]
        cls.search_columns = [task, "unit", "note_date", "author"]
        super().declare(model)
