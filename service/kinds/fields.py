"""Field types for job kinds' argument models."""

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

# Control characters, lone surrogates and line/paragraph separators would forge or break log lines.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _printable(text: str) -> str:
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text):
        raise ValueError("must not contain control characters, line separators or lone surrogates")
    return text


SafeText = Annotated[str, Field(max_length=1000), AfterValidator(_printable)]
