"""Drives a live percept server with the client openapi-python-client generated from its
/openapi.json (crates/server/tests/openapi.rs runs it; docs/openapi-client.md shows the same
calls). Usage: drive.py BASE_URL API_KEY PHOTO"""

import base64
import sys

from percept_client import AuthenticatedClient
from percept_client.api.compatibility import compat_api_parse
from percept_client.api.tasks import anonymize, inspect, parse
from percept_client.models import (
    AnonymizeMode,
    AnonymizeResult,
    ApiParseRequest,
    ApiParseResponse,
    ErrorBody,
    ImageJson,
    ImageUpload,
    InspectResult,
    ParseResult,
)
from percept_client.types import File

base_url, key, photo_path = sys.argv[1:4]
with open(photo_path, "rb") as f:
    photo = f.read()
client = AuthenticatedClient(base_url=base_url, token=key, timeout=120.0)


def upload() -> ImageUpload:
    return ImageUpload(image=File(payload=photo, file_name="photo.jpg", mime_type="image/jpeg"))


# parse, as a multipart upload, with a typed option.
parsed = parse.sync(client=client, body=upload(), mask=False)
assert isinstance(parsed, ParseResult), parsed
assert parsed.person_count >= 2 and len(parsed.persons) == parsed.person_count, parsed.person_count
assert parsed.segments and parsed.segments[0].label, parsed.segments[:1]
print(f"parse: persons={parsed.person_count} segments={len(parsed.segments)} parser={parsed.parser}")

# anonymize, as JSON with the photo in base64.
hidden = anonymize.sync(
    client=client, body=ImageJson(image=base64.b64encode(photo).decode()), mode=AnonymizeMode.PIXELATE
)
assert isinstance(hidden, AnonymizeResult), hidden
assert hidden.count >= 2 and len(hidden.faces) == hidden.count, hidden.count
face = hidden.faces[0]
assert face.bbox.width > 0 and len(face.landmarks) == 5 and 0 < face.score <= 1, face
assert base64.b64decode(hidden.image)[:2] == b"\xff\xd8" or hidden.image_format.value == "png"
print(f"anonymize: faces={hidden.count} detector={hidden.detector.value}")

# inspect, as the raw bytes.
info = inspect.sync(client=client, body=File(payload=photo, mime_type="image/jpeg"))
assert isinstance(info, InspectResult) and info.format_ == "jpeg", info
print(f"inspect: {info.width}x{info.height}")

# The compatibility route of the parsing service percept replaces.
old = compat_api_parse.sync(
    client=client, body=ApiParseRequest(image=base64.b64encode(photo).decode())
)
assert isinstance(old, ApiParseResponse) and old.code == 0, old
assert old.data.person_count >= 2 and old.data.colored_mask_url.endswith(".png"), old.data
print(f"api/parse: person_count={old.data.person_count}")

# Without the key: the typed error body.
anonymous = AuthenticatedClient(base_url=base_url, token="wrong-key-wrong-key")
refused = inspect.sync(client=anonymous, body=upload())
assert isinstance(refused, ErrorBody) and refused.error.code.value == "unauthorized", refused
print("401: unauthorized")
