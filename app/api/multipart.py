"""A lean multipart/form-data reader for image uploads.

Starlette's form parser spools every part into a temporary file object; for many small images that
bookkeeping costs more than decoding them. Here parts stay bytes in memory, which is safe because the
whole body is already bounded by VAE_MAX_UPLOAD_BYTES.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import BadRequest, InvalidInput


@dataclass
class Part:
    name: str = ""
    filename: str | None = None
    chunks: list[bytes] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def parse_multipart(body: bytes, content_type: str, max_parts: int) -> list[Part]:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data content type without a boundary")
    if not body or body.isspace():  # isspace stops at the first other byte; strip() would copy the body
        raise BadRequest("the multipart body is empty")
    parts: list[Part] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    closed: list[bool] = []

    def on_part_begin():
        if len(parts) >= max_parts:
            raise InvalidInput(f"too many parts: at most {max_parts} per request")
        parts.append(Part())

    def on_header_end():
        if bytes(header["field"]).lower() == b"content-disposition":
            _, disposition = parse_options_header(bytes(header["value"]))
            parts[-1].name = disposition.get(b"name", b"").decode("utf-8", "replace")
            filename = disposition.get(b"filename")
            parts[-1].filename = filename.decode("utf-8", "replace") if filename is not None else None
        header["field"].clear()
        header["value"].clear()

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin,
        "on_part_data": lambda data, start, end: parts[-1].chunks.append(data[start:end]),
        "on_header_field": lambda data, start, end: header["field"].extend(data[start:end]),
        "on_header_value": lambda data, start, end: header["value"].extend(data[start:end]),
        "on_header_end": on_header_end,
        "on_end": lambda: closed.append(True),
    })
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as error:
        raise BadRequest(f"malformed multipart body: {error}") from error
    if not closed:
        # The parser hands out a part's bytes as they arrive, so without this check a body cut short
        # would be scored as a truncated image, or reported as missing its parts.
        raise BadRequest(f"malformed multipart body: it ends before the closing boundary "
                         f"'--{boundary.decode('latin-1')}--'; was the upload cut short?")
    return parts
