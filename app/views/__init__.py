"""The business pages, one module per area, on the bases in base.py and entity.py; registered
from app/resources.py."""
