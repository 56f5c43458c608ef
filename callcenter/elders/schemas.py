"""Request and response schemas of the elders domain, with the checks a Chinese civil-affairs roster needs:
phone numbers (mobile, landline with area code, service numbers), the resident ID check digit (GB 11643)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidatorFunctionWrapHandler, field_validator

from callcenter.api.schemas import Page, PageQuery, QuerySchema, RequestSchema, ResponseSchema, RowId, text
from callcenter.elders.masking import mask_id_number, mask_phone
from callcenter.elders.models import ContactRole, Elder, LivingSituation, RosterImportStatus

_MOBILE = re.compile(r"1[3-9]\d{9}")
# Area codes: 010, 02X, and 03XX-09XX; local numbers of 7 or 8 digits.
_LANDLINE = re.compile(r"0(?:10|2\d|[3-9]\d{2})[2-9]\d{6,7}")
# Emergency and public-service short numbers: 110, 119, 120, 122, 12345, 12349, 95xxx (utilities, banks).
_SERVICE = re.compile(r"1\d{2}|1\d{4}|9[56]\d{3}")


def normalise_phone(value: str) -> str:
    """Stored as digits only, without +86/0086, so caller-ID matching (devices.services) compares equal.

    Accepts the ways people write numbers: "138 0013 8000", "010-6512 3456", "+86 13800138000"."""
    compact = re.sub(r"[\s()-]", "", value)
    if compact.startswith("+86"):
        compact = compact[3:]
    elif compact.startswith("0086"):
        compact = compact[4:]
    if not compact.isascii() or not compact.isdigit():
        raise ValueError("only digits, spaces, '-', '(', ')' and a +86 prefix are allowed")
    if not (_MOBILE.fullmatch(compact) or _LANDLINE.fullmatch(compact) or _SERVICE.fullmatch(compact)):
        raise ValueError("not a Chinese mobile number (1[3-9] + 9 digits), a landline with its area code "
                         "(e.g. 010-65123456) or a service number (e.g. 120, 12349)")
    return compact


Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(normalise_phone)]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def resident_id_check_digit(first17: str) -> str:
    """GB 11643-1999: ISO 7064 MOD 11-2 over the first 17 digits."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def validate_resident_id(value: str) -> str:
    value = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        raise ValueError("a resident ID number is 17 digits and a check digit (0-9 or X)")
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise ValueError("digits 7-14 are not a valid birth date") from None
    if resident_id_check_digit(value[:17]) != value[17]:
        raise ValueError("the check digit does not match (GB 11643)")
    return value


ResidentId = Annotated[str, StringConstraints(max_length=18), AfterValidator(validate_resident_id)]
Language = Literal["zh-CN", "en"]
# The fields of an elder's file that single-file answers mask (callcenter.elders.access) and a reveal gives in full.
MASKABLE = ("id_number",)
MaskableField = Literal["id_number"]
Name = text(100)
Label = text(50)
Place = text(100)
Address = text(300)
Notes = Annotated[str, StringConstraints(max_length=5000)]
Items = Annotated[list[text(100)], Field(max_length=50)]  # type: ignore[valid-type]


def _not_in_future(value: dt.date | None) -> dt.date | None:
    if value is not None and value > dt.date.today():
        raise ValueError("is in the future")
    return value


BirthDate = Annotated[dt.date, AfterValidator(_not_in_future)]


class ContactCreate(RequestSchema):
    role: ContactRole
    name: Name  # type: ignore[valid-type]
    phone: Phone
    priority: int = Field(1, ge=1, le=99, description="1 is called first within the role")
    relationship: Label | None = Field(None, description="e.g. 儿子, 女儿 (relatives)")  # type: ignore[valid-type]


class ContactOut(ResponseSchema):
    id: int
    elder_id: int
    role: ContactRole
    name: str
    phone: str
    priority: int
    relationship: str | None = Field(validation_alias="relationship_to_elder")
    volunteer_id: int | None = Field(None, description="set when the contact is a paired volunteer "
                                                       "(/api/v1/volunteers/{id})")
    created_at: dt.datetime


class ElderFields(RequestSchema):
    """Every field an elder's file may be given or changed with."""

    full_name: Name  # type: ignore[valid-type]
    gender: Literal["男", "女", "male", "female"] | None = None
    birth_date: BirthDate | None = None
    id_number: ResidentId | None = Field(None, description="18-digit resident ID; the check digit is verified")
    phone: Phone | None = None
    address: Address | None = None  # type: ignore[valid-type]
    community: Place | None = None  # type: ignore[valid-type]
    district: Place | None = None  # type: ignore[valid-type]
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    living_situation: LivingSituation | None = None
    care_level: int | None = Field(None, ge=0, le=5, description="0 independent … 5 fully dependent")
    conditions: Items = Field(default_factory=list)
    medications: Items = Field(default_factory=list)
    allergies: Items = Field(default_factory=list)
    language: Language = "zh-CN"
    notes: Notes | None = None
    preferred_provider_id: RowId | None = Field(None, description="the service provider the elder chose")


class ElderCreate(ElderFields):
    contacts: list[ContactCreate] = Field(default_factory=list, max_length=50)


# Fields an elder's file cannot be without: PATCH may change them but never set them to null.
_NOT_NULL = ("full_name", "conditions", "medications", "allergies", "language")


class ElderPatch(ElderFields):
    """Only the fields present are changed; ``null`` clears an optional field."""

    full_name: Name | None = None  # type: ignore[valid-type]
    conditions: Items | None = None
    medications: Items | None = None
    allergies: Items | None = None
    language: Language | None = None

    @field_validator(*_NOT_NULL, mode="wrap")
    @classmethod
    def _not_null(cls, value: object, handler: ValidatorFunctionWrapHandler) -> object:
        if value is None:
            raise ValueError("may not be null")
        return handler(value)

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class ElderOut(ResponseSchema):
    id: int
    full_name: str
    gender: str | None
    birth_date: dt.date | None
    id_number: str | None
    phone: str | None
    address: str | None
    community: str | None
    district: str | None
    latitude: float | None
    longitude: float | None
    living_situation: LivingSituation | None
    care_level: int | None
    conditions: list[str]
    medications: list[str]
    allergies: list[str]
    language: str
    notes: str | None
    preferred_provider_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    contacts: list[ContactOut]
    masked_fields: list[MaskableField] = Field(
        default_factory=list, description="fields shown masked in this answer (`id_number`: 4110**********0025); "
                                          "POST /elders/{id}/reveal with a reason gives the full value")

    @classmethod
    def of(cls, elder: Elder, *, id_number_in_full: bool) -> ElderOut:
        """The file as its reader may see it: the resident ID masked unless ``id_number_in_full``
        (``access.sees_id_number_in_full``)."""
        out = cls.model_validate(elder)
        if id_number_in_full or elder.id_number is None:
            return out
        return out.model_copy(update={"id_number": mask_id_number(elder.id_number), "masked_fields": ["id_number"]})


class ElderSummary(ResponseSchema):
    """One elder in a list: what an operator needs to pick the right file, and no more (GB/T 35273 minimisation).
    No address, coordinates, health data, notes or contacts; the birth year, not the date; the phone number and the
    resident ID masked. The file itself is GET /elders/{id} (audited)."""

    id: int
    full_name: str
    gender: str | None
    birth_year: int | None
    community: str | None
    district: str | None
    phone_masked: str | None = Field(description="the elder's number as 139****9000 (service numbers as they are)")
    id_number_masked: str | None = Field(description="the resident ID as 4110**********0025")
    care_level: int | None
    living_situation: LivingSituation | None

    @classmethod
    def of(cls, elder: Elder) -> ElderSummary:
        return cls(id=elder.id, full_name=elder.full_name, gender=elder.gender,
                   birth_year=elder.birth_date.year if elder.birth_date is not None else None,
                   community=elder.community, district=elder.district, phone_masked=mask_phone(elder.phone),
                   id_number_masked=mask_id_number(elder.id_number), care_level=elder.care_level,
                   living_situation=elder.living_situation)


class ElderPage(Page):
    items: list[ElderSummary]


class ElderQuery(PageQuery):
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = Field(
        None, description="part of the name or address, or a whole resident ID (sealed at rest: never a part)")
    phone: Phone | None = Field(None, description="the elder's or a contact's number")
    community: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None


class ContactList(ResponseSchema):
    items: list[ContactOut]


class ReadQuery(QuerySchema):
    """Why the file is read, for the audit log: the call or the work order it is read for (each must exist and be
    about this elder). Without either, an agent's live call with the elder is taken, else the read is unjustified
    (still served, and audited so)."""

    call_id: RowId | None = Field(None, description="the call the file is read for")
    order_id: RowId | None = Field(None, description="the work order the file is read for")


class RevealRequest(RequestSchema):
    reason: text(200, min_length=4) = Field(  # type: ignore[valid-type]
        description="why the full value is needed (at least 4 characters): written to the audit log")
    fields: Annotated[list[MaskableField], Field(min_length=1, max_length=len(MASKABLE))] = Field(
        description="the masked fields wanted in full")
    call_id: RowId | None = Field(None, description="the call it is needed for (must be about this elder)")
    order_id: RowId | None = Field(None, description="the work order it is needed for (must be about this elder)")


class RevealOut(ResponseSchema):
    elder_id: int
    id_number: str | None = Field(None, description="in full, when asked for (null: the file has none)")


class RosterImportQuery(QuerySchema):
    """How an uploaded roster is named and run: ``filename`` (its extension says CSV or XLSX) for a raw body; a
    multipart upload carries its own and may send ``dry_run`` as a form field too."""

    filename: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)] | None = None
    dry_run: bool = Field(False, description="check and count only; change nothing")


class RejectedRow(ResponseSchema):
    row: int = Field(description="the row number as the spreadsheet shows it (the header is a row too)")
    id_number: str | None
    full_name: str | None
    errors: dict[str, str] = Field(description="field -> reason")


class RosterImportOut(ResponseSchema):
    id: int
    filename: str
    sha256: str
    dry_run: bool
    status: RosterImportStatus
    total_rows: int
    processed_rows: int = Field(description="rows checked so far (committed every 500 rows)")
    created_count: int
    updated_count: int
    unchanged_count: int
    rejected_count: int
    rejected_preview: list[RejectedRow] = Field(
        description="the first rejected rows with their reasons; all of them: GET …/rejected (CSV)")
    error: str | None = Field(description="why a failed import failed; nothing of its file was imported")
    started_by_id: int | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
