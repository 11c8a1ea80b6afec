"""Translation helpers. The UI's source language is Simplified Chinese (the msgids are the
Chinese texts); `app/translations/en` switches it to English."""
from flask_babel import LazyString, gettext, lazy_gettext

__all__ = ["N_", "entity_text", "gettext", "lazy_gettext"]


def N_(text: str) -> str:
    """Mark a text for extraction that a template translates when it renders it (menu items,
    role names)."""
    return text


def entity_text(pattern: str, entity: str) -> LazyString:
    """A title such as "%(entity)s列表" for an entity, translated when rendered."""
    return LazyString(lambda: gettext(pattern, entity=gettext(entity)))
