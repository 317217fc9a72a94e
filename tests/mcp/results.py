"""What an MCP tool call returned, as the tests read it: the data of a success, the text of an error."""

import json
from typing import Any


def data(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content if result.structured_content is not None else json.loads(result.content[0].text)


def error(result: Any) -> str:
    """The tool error's own text (`CODE: message`), without the SDK's "Error executing tool <name>: " prefix."""
    assert result.is_error, result
    text = result.content[0].text
    return text.split(": ", 1)[1] if text.startswith("Error executing tool ") else text
