"""Links that open a version's report in a browser, whose address bar cannot send an API key.

Asked with a key, GET /model/versions/{version}/report gives `browser_link`: report.html with
`?access=<expiry>.<signature>`, where the signature is an HMAC, keyed by that API key, of the model's name,
the version and the expiry. Such a link opens that version's report files and nothing else, until it
expires, and only while its key is configured: revoking the key revokes its links.
Nothing is stored: every worker checks a link with the keys it has.
"""

from __future__ import annotations

import base64
import datetime as dt
import re

from app.auth import ApiKey, ApiKeys
from app.errors import Unauthorized

LINK_LIFETIME = dt.timedelta(hours=1)  # long enough to read a report; short enough that a link is not a key
# <expiry, seconds since 1970>.<HMAC-SHA256 in unpadded base64url>; a token of any other shape is refused as is
_TOKEN = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def _message(model_name: str, version: int, expires: int) -> bytes:
    return f"report-link\n{model_name}\n{version}\n{expires}".encode()


def make_access(api_keys: ApiKeys, key: ApiKey, model_name: str, version: int,
                now: dt.datetime) -> tuple[str, dt.datetime] | None:
    """The value of `?access=` for a link to `version`'s report made with `key`, and when it expires; None if
    the key is no longer configured (the keys were reloaded since the request was let in)."""
    expires = int((now + LINK_LIFETIME).timestamp())
    signature = api_keys.sign(key, _message(model_name, version, expires))
    if signature is None:
        return None
    encoded = base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    return f"{expires}.{encoded}", dt.datetime.fromtimestamp(expires, dt.UTC)


def check_access(api_keys: ApiKeys, access: str, model_name: str, version: int, now: dt.datetime) -> ApiKey:
    """The key that made the link `access` to `version`'s report; Unauthorized saying why not."""
    new_link = f"ask GET /model/versions/{version}/report, with an API key, for a new link"
    token = _TOKEN.fullmatch(access)
    if token is None:
        raise Unauthorized(f"?access= is not the access token of a report link (it is cut short or altered); "
                           f"{new_link}")
    expires_text, signature = token[1], base64.urlsafe_b64decode(token[2] + "=")
    key = api_keys.signer(_message(model_name, version, int(expires_text)), signature)
    if key is None:
        raise Unauthorized(f"this report link does not open version {version} of {model_name!r}: it was made for "
                           f"another version or model, or altered, or the API key that made it was revoked; "
                           f"{new_link}")
    expired = dt.datetime.fromtimestamp(int(expires_text), dt.UTC)
    if expired <= now:
        raise Unauthorized(f"this report link expired at {expired.isoformat()}; {new_link}")
    return key  # every role may read, so any configured key's link opens the report
