"""What a break-glass function is sent, and who asked: the models its handler validates an event
with at cold start, apart from the service that acts on them (service/breakglass.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tokenwarden.domain.naming import SLUG

# Free text (a name typed by the caller) is one printable line of at most this many characters.
MAX_CLAIM_LENGTH = 200
MAX_IDENTITY_LENGTH = 2048


class BreakGlassError(ValueError):
    """Bad input for a revoke or restore: nothing was changed."""


def free_text(value: str, what: str, limit: int) -> str:
    """`value` stripped, if it is one line of printable text of at most `limit` characters
    (control characters, line breaks and invisible format characters are refused)."""
    text = value.strip()
    if len(text) > limit:
        raise BreakGlassError(f"{what} is {len(text)} characters; keep it to {limit}")
    if not text.isprintable():
        raise BreakGlassError(f"{what} must be one line of printable text (no control characters)")
    return text


class BreakGlassRequest(BaseModel):
    """What both break-glass functions are sent: which principal, and who says they ask."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    principal: str = Field(min_length=1, max_length=48)
    requested_by: str = Field(
        min_length=1, max_length=MAX_CLAIM_LENGTH, description="the person asking (recorded as a claim)"
    )

    @field_validator("principal")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise ValueError("not a principal id (lowercase letters, digits and '-')")
        return value

    @field_validator("requested_by")
    @classmethod
    def _claim(cls, value: str) -> str:
        return free_text(value, "requested_by", MAX_CLAIM_LENGTH)


class Actor(BaseModel):
    """Who asked for a revoke or restore, and how much of it AWS vouches for.

    `requester` is the identity AWS authenticated for the request: the CLI's caller (STS), or None
    when the code cannot see it (a Lambda handler is not told who invoked it). `acted_as` is the
    identity whose credentials made the changes (the caller, or the function). `request_id` is the
    Lambda invoke's request id: CloudTrail's data event for that Invoke has it as `requestID`, with
    the invoker in `userIdentity`. `claimed_by` is what the caller typed: a claim nobody checked.
    """

    model_config = ConfigDict(frozen=True)

    acted_as: str = Field(min_length=1, max_length=MAX_IDENTITY_LENGTH)
    requester: str | None = Field(default=None, max_length=MAX_IDENTITY_LENGTH)
    claimed_by: str | None = Field(default=None, max_length=MAX_CLAIM_LENGTH)
    request_id: str | None = Field(default=None, max_length=128)

    @field_validator("acted_as", "requester", "claimed_by", "request_id")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be one line of printable text")
        return value

    @classmethod
    def caller(cls, arn: str) -> Actor:
        """An operator's own credentials: the caller's identity is authenticated."""
        return cls(acted_as=arn, requester=arn)

    @classmethod
    def invoke(cls, function_arn: str, request_id: str, claimed_by: str) -> Actor:
        """A Lambda invoke: the invoker is in CloudTrail under `request_id`; `claimed_by` is a claim."""
        return cls(acted_as=function_arn, request_id=request_id, claimed_by=claimed_by)

    @classmethod
    def of(cls, actor: Actor | str) -> Actor:
        return actor if isinstance(actor, Actor) else cls.caller(actor)

    def describe(self) -> str:
        if self.requester is not None:
            return self.requester
        said = f", claimed by {self.claimed_by}" if self.claimed_by else ""
        request = f" request {self.request_id}" if self.request_id else ""
        return f"{self.acted_as}{request} (invoker in CloudTrail){said}"

    def context(self) -> dict[str, str]:
        """The fields a notification carries, by name."""
        return {
            k: v
            for k, v in (
                ("requester", self.requester),
                ("acted_as", self.acted_as),
                ("claimed_by", self.claimed_by),
                ("request_id", self.request_id),
            )
            if v
        }
