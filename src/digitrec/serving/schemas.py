"""The API's request bodies and answers as Pydantic models: they validate what a client sends and give
/docs its schemas. Every refusal is told in the project's words (`refusal`), never Pydantic's own."""

from __future__ import annotations

from typing import Annotated, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SIDE = 28  # a digit's picture as the network reads it: MNIST's 28x28

# One pixel: a JSON number 0-255 (strict: true and "7" are not numbers; NaN and 1e400 lie outside 0-255).
Pixel = Annotated[float, Field(ge=0, le=255, strict=True, allow_inf_nan=False)]
Row = Annotated[list[Pixel], Field(min_length=SIDE, max_length=SIDE)]


class RequestBody(BaseModel):
    """A JSON body; `refusals` name, for each kind of mistake Pydantic reports, what the client is told, in
    the order they are looked for (a wrong shape is said before a wrong number)."""

    model_config = ConfigDict(extra="ignore")
    refusals: ClassVar[tuple[tuple[frozenset[str], str], ...]] = ()


class PixelsBody(RequestBody):
    """One digit as numbers: 28 rows of 28 numbers 0-255, light ink on black as in MNIST."""

    pixels: Annotated[list[Row], Field(min_length=SIDE, max_length=SIDE,
                                       description="28 rows of 28 numbers 0-255, light ink on black")]
    refusals: ClassVar = (
        (frozenset({"model_type", "missing"}), 'expected a JSON object {"pixels": [[28 numbers] x 28 rows]}'),
        (frozenset({"list_type", "too_short", "too_long"}), "pixels must be 28 rows of 28 numbers"),
        (frozenset({"float_type"}), "pixels must all be numbers 0-255"),
        (frozenset({"finite_number", "greater_than_equal", "less_than_equal"}), "pixel values must lie in 0-255"),
    )


class ImageBody(RequestBody):
    """A picture in JSON: its file's bytes in base64, or a data: URL of them."""

    image: Annotated[str, Field(min_length=1, strict=True, description="a PNG, JPEG, GIF, BMP, TIFF or WebP "
                                "file in base64, or a data: URL (data:image/png;base64,...)")]
    refusals: ClassVar = (
        (frozenset({"model_type", "missing", "string_type", "string_too_short"}),
         'expected a JSON object {"image": "<base64 PNG or JPEG>"}'),
    )


class CorrectionFields(RequestBody):
    """What a picture sent to /api/correct shows: `label`, one digit, or `text`, the digits of a number."""

    label: Annotated[str, Field(pattern="^[0-9]?$", description="the one digit the picture shows")] = ""
    text: Annotated[str, Field(pattern="^([0-9]{1,32})?$", description="the digits of the number it shows")] = ""
    confirmed: Annotated[str, Field(description="1 or true: the reading was right")] = ""
    refusals: ClassVar = ()

    @model_validator(mode="after")
    def _says_what_it_shows(self) -> CorrectionFields:
        if not self.label and not self.text:
            raise ValueError("no label or text")
        return self


CORRECTION_REFUSAL = "say what it shows: 'label', one digit 0-9, or 'text', 1-32 digits"
CorrectionFields.refusals = ((frozenset({"string_type", "string_pattern_mismatch", "value_error"}),
                              CORRECTION_REFUSAL),)

Body = TypeVar("Body", bound=RequestBody)


class ApiError(Exception):
    """A request refused: its HTTP status and the one line the client is told (`{"error": message}`)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def parse_json(model: type[Body], body: bytes) -> Body:
    """`body` validated as `model`: malformed JSON is a 400 (also a number of over 4,300 digits, or nesting
    deeper than 200 levels: Pydantic's parser stops there), a body of the wrong shape or values a 422."""
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise refusal(model, e) from None


def parse_fields(model: type[Body], fields: dict[str, str]) -> Body:
    """Form fields validated as `model`; what is wrong is a 422."""
    try:
        return model.model_validate(fields)
    except ValidationError as e:
        raise refusal(model, e) from None


def refusal(model: type[RequestBody], error: ValidationError) -> ApiError:
    found = error.errors(include_url=False, include_context=False, include_input=False)
    kinds = {e["type"] for e in found}
    if "json_invalid" in kinds:
        return ApiError(400, f"malformed JSON: {found[0]['msg'].removeprefix('Invalid JSON: ')}")
    for types, message in model.refusals:
        if kinds & types:
            return ApiError(422, message)
    first = found[0]
    return ApiError(422, f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}")


# ---------------------------------------------------------------- answers, for /docs (not validated)


class ErrorAnswer(BaseModel):
    error: str = Field(description="what was wrong, in one line")


class DigitAnswer(BaseModel):
    digit: int = Field(description="the digit read, 0-9")
    confidence: float = Field(description="its probability")
    unsure: bool = Field(description="the confidence is under the product's threshold")
    probabilities: list[float] = Field(description="each digit's probability, 0 to 9")
    model: str = Field(description="the model's name")
    input: list[list[int]] = Field(description="the 28x28 the model read")


class DigitRead(BaseModel):
    digit: int | str = Field(description="a digit, or a sign written inside the number")
    confidence: float
    box: list[int] = Field(description="x0, y0, x1, y1 in the picture's pixels")


class NumberAnswer(BaseModel):
    text: str = Field(description="the number read")
    confidence: float = Field(description="the probability that every digit is right")
    digits: list[DigitRead]
    rejected: int = Field(description="marks left out as not digits")
    inputs: list[list[list[int]]] = Field([], description="with ?inputs=1 only: each digit's 28x28")


class Character(BaseModel):
    char: str = Field(description="a digit, or a sign written inside the number")
    confidence: float
    box: list[int] = Field(description="x0, y0, x1, y1 in the picture's pixels")


class Field_(BaseModel):
    model_config = ConfigDict(title="Field")
    text: str = Field(description="the field's reading")
    confidence: float
    box: list[int] = Field(description="x0, y0, x1, y1 in the picture's pixels")
    characters: list[Character] = Field(description="each character read, left to right")


class PageAnswer(BaseModel):
    fields: list[Field_] = Field(description="every written field, in reading order")
    width: int = Field(description="the picture's width in pixels")
    height: int


class CorrectionAnswer(BaseModel):
    saved: int | str = Field(description="a number: how many digits were kept; a digit: where it was kept")
    digit: int = Field(description="the digit kept last")
    kind: str = Field(description="corrected, or confirmed (the reading was right)")
    examples: int = Field(description="examples kept so far")
    tuning: bool = Field(description="a tune on them has started in the background")


# ---------------------------------------------------------------- request bodies in the OpenAPI document

REQUEST_MODELS = (PixelsBody, ImageBody, CorrectionFields)
_FILE = {"type": "string", "format": "binary", "description": "the picture: PNG, JPEG, GIF, BMP, TIFF or WebP"}


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def request_body(json_model: type[RequestBody] | None, images: bool = True,
                 form_model: type[RequestBody] | None = None) -> dict:
    """`openapi_extra` for a route that reads its body itself: multipart with a `file` field (and
    `form_model`'s fields), with `images` a picture's raw bytes (any image/* type), and `json_model`."""
    fields = form_model.model_json_schema()["properties"] if form_model is not None else {}
    form = {"type": "object", "required": ["file"], "properties": {"file": _FILE, **fields}}
    content = {"multipart/form-data": {"schema": form}}
    if images:
        content["image/*"] = {"schema": _FILE}
    if json_model is not None:
        content["application/json"] = {"schema": _ref(json_model)}
    return {"requestBody": {"required": True, "content": content}}


def with_request_schemas(document: dict) -> dict:
    """The OpenAPI document with REQUEST_MODELS among its schemas (FastAPI adds only those of the
    parameters it parses; these bodies are parsed by the routes, under the server's own limits)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in REQUEST_MODELS:
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return document
