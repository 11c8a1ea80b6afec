"""Errors the user is told about in Chinese (a form message, an API 422), never a 500."""


class DomainError(Exception):
    """A business rule refused the operation; the message is for the user."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message
