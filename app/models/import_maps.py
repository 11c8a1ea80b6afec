"""The words of one user's files: a value an office writes that the panel did not know (护老
for a need category), mapped once on the import page to an existing entry and remembered for
that user's next files, per resource and column (app/imports.py)."""
from flask_appbuilder import Model
from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String

from app import clock


class ImportValueMap(Model):
    """Not a business row: its user's own setting (read and written only for that user)."""

    __tablename__ = "import_value_map"
    __table_args__ = (Index("uq_import_value_map", "user_id", "resource", "field", "word",
                            unique=True),)

    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False)
    resource = Column(String(50), nullable=False)  # the importable resource (need, unit, …)
    field = Column(String(50), nullable=False)  # the importer's column (category, urgency, …)
    word = Column(String(200), nullable=False)  # the file's value, folded (import_words.fold)
    value = Column(String(64), nullable=False)  # a choice's code, or a dictionary entry's id
    changed_on = Column(DateTime, nullable=False, default=clock.utcnow)
