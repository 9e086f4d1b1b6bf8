"""Names of the places images come from: a line, a camera, a client.

The service stores each result with its `?source=`, and a model version may carry a threshold calibrated
for one source (`recalibrate --for-source`). Both follow this one rule, so a calibrated name is always
one the service accepts.
"""

import re

MAX_SOURCE_LENGTH = 64
SOURCE_PATTERN = rf"^[A-Za-z0-9._:/@-]{{1,{MAX_SOURCE_LENGTH}}}$"
SOURCE_RULE = f"letters, digits and ._:/@-, at most {MAX_SOURCE_LENGTH}"


def is_source_name(name: object) -> bool:
    return isinstance(name, str) and re.fullmatch(SOURCE_PATTERN, name) is not None
