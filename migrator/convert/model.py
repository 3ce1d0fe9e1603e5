"""Result types, policy and the registry of stable change/problem codes.

Every change and problem the converter or validator reports has a stable code listed here,
with its kind, so the outcome of a conversion is decided by data, not scattered `if`s, and
docs/conversion.md can be checked against this list.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Bump when a conversion rule changes: stored conversions with another version are redone.
CONVERTER_VERSION = "3"   # 2: rules-driven limits, UTF-16 lengths, image cards, per-message buttons; 3: empty lists left out

Outcome = Literal["exact", "lossy", "needs_edit", "unsupported"]
OUTCOMES: tuple[str, ...] = ("exact", "lossy", "needs_edit", "unsupported")



class Change(BaseModel):
    """Something the converter did to the content (a format change or a dropped part)."""

    model_config = ConfigDict(frozen=True)
    code: str
    detail: str


class Problem(BaseModel):
    """Something that stops the message from being sent as MM content."""

    model_config = ConfigDict(frozen=True)
    code: str
    detail: str
    mm_error_code: int | None = None


class ConversionResult(BaseModel):
    """The MM form of one RN message and how faithful it is.

    `message` is the MM message, set only for `exact` and `lossy`: anything non-null there
    can be sent. For `needs_edit`, `draft` holds the converted content (unchanged, never
    truncated) that a person must fix first; it fails validation and must never be sent.
    """

    outcome: Outcome
    message: dict | None
    draft: dict | None = None
    changes: list[Change] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)


class ConvertPolicy(BaseModel):
    """The choices a partner may want to make differently; defaults are the safe ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unsupported_buttons: Literal["drop", "refuse"] = Field(
        "drop",
        description="Buttons and quick replies MM does not take (phone_number, account_link, "
                    "game_play, ...): drop them and report the change (lossy), or refuse the "
                    "message (needs_edit).")
    non_facebook_media_url: Literal["needs_edit", "to_generic"] = Field(
        "needs_edit",
        description="An image/video given by a URL that is not Facebook-hosted cannot be a "
                    "media template. needs_edit: a person uploads it (attachment_id). "
                    "to_generic: images become a one-card generic template titled "
                    "`generic_image_title` (videos still need an upload).")
    generic_image_title: str | None = Field(
        None, description="Card title used by non_facebook_media_url=to_generic (1-80 characters).")
    max_line_breaks: int | None = Field(
        None, ge=0,
        description="Most line breaks allowed in one text field before MM error 2300073 is "
                    "assumed (Meta does not document the limit). Default: the rules' "
                    "mm_line_breaks_max.")

    @model_validator(mode="after")
    def _title_for_generic(self) -> "ConvertPolicy":
        if self.non_facebook_media_url == "to_generic":
            t = (self.generic_image_title or "").strip()
            if not t or len(t) > 80:  # checked again against the rules by the validator
                raise ValueError("non_facebook_media_url=to_generic needs generic_image_title "
                                 "(1-80 characters): the card title shown above the image")
        return self


# ---------------------------------------------------------------------------------------
# Stable codes. kind: "info" (no loss), "lossy" (something dropped), "needs_edit",
# "unsupported". Changes use info/lossy, problems use needs_edit/unsupported.
# ---------------------------------------------------------------------------------------

CHANGE_CODES: dict[str, tuple[str, str]] = {
    "PLACEHOLDER_MAPPED": ("info", "A partner placeholder ({first_name}, %FIRST_NAME%, "
                           "{{user.first_name}}, ...) became the MM macro {{first_name}} etc."),
    "ATTACHMENT_TO_MEDIA_TEMPLATE": ("info", "A plain image/video attachment (attachment_id or "
                                     "Facebook URL) became an MM media template."),
    "IMAGE_TO_GENERIC_CARD": ("lossy", "A plain image with a non-Facebook URL became a one-card "
                              "generic template with the policy's title (policy to_generic)."),
    "MEDIA_TEMPLATE_TO_GENERIC_CARD": ("lossy", "A media template image with a non-Facebook URL "
                                       "became a one-card generic template (policy to_generic)."),
    "BUTTON_DROPPED": ("lossy", "A button of a type MM does not take was dropped "
                       "(policy unsupported_buttons=drop)."),
    "DEFAULT_ACTION_DROPPED": ("lossy", "A card's default_action of a type other than web_url "
                               "was dropped (policy unsupported_buttons=drop)."),
    "DEFAULT_ACTION_TITLE_REMOVED": ("info", "A title on a default_action (never shown) was removed."),
    "QUICK_REPLY_DROPPED": ("lossy", "A quick reply of a type MM does not take (e.g. location) "
                            "was dropped (policy unsupported_buttons=drop)."),
    "BUTTON_TEMPLATE_TO_TEXT": ("lossy", "A button template left without buttons became a text "
                                "message with the same text."),
    "METADATA_DROPPED": ("lossy", "The message's metadata (echoed to the app in RN webhooks) was "
                         "dropped: MM does not document it."),
    "FIELD_DROPPED": ("lossy", "A field MM does not document was dropped."),
    "NULL_FIELD_REMOVED": ("info", "A field set to null (e.g. \"image_url\": null) was left out: "
                           "it carries nothing and Meta may refuse the null."),
    "EMPTY_BUTTONS_REMOVED": ("info", "A buttons list left empty after dropping was removed."),
    "EMPTY_LIST_REMOVED": ("info", "An empty list in the input (buttons: [], quick_replies: []) was left "
                           "out: it shows nothing, Meta documents lists of 1 to 3 buttons and up to 13 "
                           "quick replies, never an empty one, and may refuse it."),
    "BUTTON_TYPE_LOWERCASED": ("info", "A button type written in capitals (WEB_URL) was written as "
                               "Meta spells it (web_url)."),
    "CONTESTED_BUTTON_DROPPED": ("lossy", "A postback/app button was dropped: MM's error 2300023 "
                                 "says only web_url is valid while other MM pages show postback/app; "
                                 "the rules (mm_button_types) take the reading that cannot fail a "
                                 "cutover."),
    "RELIES_ON_CONTESTED_BUTTON_TYPE": ("info", "The message keeps a postback/app button because the "
                                        "rules (mm_button_types) allow it: it relies on the contested "
                                        "reading of 2300023 ('Valid button types are: web_url')."),
    "MESSAGE_TAG_SEND": ("lossy", "The RN send used a message tag (ACCOUNT_UPDATE, ...): Meta routes "
                         "tagged content to Utility templates, which may not carry marketing; as an MM "
                         "it is marketing, billed and needs the subscriber's opt-in. Review it."),
}

PROBLEM_CODES: dict[str, tuple[str, str]] = {
    # unsupported: there is no MM form
    "NOT_A_MESSAGE": ("unsupported", "The input is not a Send API message or request body."),
    "MESSAGE_NOT_JSON": ("unsupported", "The stored message is not valid JSON."),
    "INVALID_JSON": ("unsupported", "A line of the input file is not valid JSON."),
    "ATTACHMENT_TYPE_UNSUPPORTED": ("unsupported", "Audio, file and other attachment types have "
                                    "no MM equivalent."),
    "TEMPLATE_UNSUPPORTED": ("unsupported", "The template type has no MM equivalent (e.g. "
                             "notification_messages, one_time_notif_req, customer_feedback)."),
    "CONVERTER_ERROR": ("unsupported", "The converter failed on this input (a bug: please report)."),
    # needs_edit: a person must change the content
    "INVALID_FIELD": ("needs_edit", "A field has the wrong type or a value MM does not accept."),
    "REQUIRED_FIELD_MISSING": ("needs_edit", "A field MM requires is missing or empty."),
    "UNKNOWN_FIELD": ("needs_edit", "The message carries a field MM does not document."),
    "TEXT_TOO_LONG": ("needs_edit", "Text is longer than MM allows (rules mm_text_max_chars, 640; "
                      "code points or UTF-16 units, the larger)."),
    "LONE_SURROGATE": ("needs_edit", "A text contains a lone UTF-16 surrogate (a broken character)."),
    "TOO_MANY_LINE_BREAKS": ("needs_edit", "A text has more line breaks than the assumed MM limit."),
    "TITLE_TOO_LONG": ("needs_edit", "A card title is longer than MM allows (rules, 80)."),
    "SUBTITLE_TOO_LONG": ("needs_edit", "A card subtitle is longer than MM allows (rules, 80)."),
    "TOO_MANY_ELEMENTS": ("needs_edit", "A carousel has more than 10 cards, or a media template "
                          "not exactly one element."),
    "TOO_MANY_BUTTONS": ("needs_edit", "More buttons on a card or in a message than MM allows "
                         "(rules mm_buttons_max / mm_buttons_per_message_max, 3)."),
    "BUTTON_TYPE_UNSUPPORTED": ("needs_edit", "A button type MM does not take "
                                "(policy unsupported_buttons=refuse, or any type on a video card "
                                "other than web_url)."),
    "BUTTON_TITLE_EMPTY": ("needs_edit", "A button has no title."),
    "BUTTON_TITLE_TOO_LONG": ("needs_edit", "A button title is longer than MM allows (rules, 20)."),
    "BUTTON_URL_EMPTY": ("needs_edit", "A URL button or default_action has no URL."),
    "INVALID_URL": ("needs_edit", "A URL is not a valid http(s) URL."),
    "PAYLOAD_TOO_LONG": ("needs_edit", "A postback or quick-reply payload is longer than MM allows (rules, 1000)."),
    "TOO_MANY_QUICK_REPLIES": ("needs_edit", "More quick replies than MM allows (rules, 13)."),
    "QUICK_REPLY_TITLE_TOO_LONG": ("needs_edit", "A quick-reply title is longer than MM allows (rules, 20)."),
    "QUICK_REPLY_UNSUPPORTED": ("needs_edit", "A quick reply of a type MM does not take "
                                "(policy unsupported_buttons=refuse)."),
    "MEDIA_URL_NOT_FACEBOOK": ("needs_edit", "Media given by a URL that is not Facebook-hosted: "
                               "upload it (attachment_id) or use a Facebook URL."),
    "VIDEO_ID_MISSING": ("needs_edit", "A generic card with media_type video has no video_id."),
    "IMAGE_URL_MISSING": ("needs_edit", "A generic card without image_url: media_type defaults to "
                          "image, which needs one (2300022)."),
    "MULTI_IMAGE_IN_CAROUSEL": ("needs_edit", "image_urls (multi-image card) inside a carousel."),
    "IMAGE_URL_AND_IMAGE_URLS": ("needs_edit", "A card has both image_url and image_urls."),
    "TOO_MANY_HERO_IMAGES": ("needs_edit", "More than one hero image in image_urls."),
    "TOO_MANY_IMAGES": ("needs_edit", "More images in image_urls than MM allows (rules, 6)."),
    "PLACEHOLDER_NOT_ALLOWED": ("needs_edit", "A personalisation placeholder in a field where MM "
                                "allows no macros (only card title/subtitle and greeting text)."),
    "UNKNOWN_MACRO": ("needs_edit", "A {{...}} macro other than {{first_name}}, {{last_name}}, "
                      "{{full_name}}."),
}

#: The MM error code Meta documents for each validator problem (None: limit documented, code not).
MM_ERROR_CODES: dict[str, int | None] = {
    "NOT_A_MESSAGE": 2300010,
    "INVALID_FIELD": 2300010,
    "UNKNOWN_FIELD": 2300010,
    "TEMPLATE_UNSUPPORTED": 2300010,
    "ATTACHMENT_TYPE_UNSUPPORTED": 2300010,
    "REQUIRED_FIELD_MISSING": 2300076,
    "TOO_MANY_LINE_BREAKS": 2300073,
    "VIDEO_ID_MISSING": 2300021,
    "IMAGE_URL_MISSING": 2300022,
    "BUTTON_TYPE_UNSUPPORTED": 2300023,
    "BUTTON_URL_EMPTY": 2300024,
    "BUTTON_TITLE_EMPTY": 2300025,
    "TOO_MANY_BUTTONS": 2300026,
    "MULTI_IMAGE_IN_CAROUSEL": 2300046,
    "IMAGE_URL_AND_IMAGE_URLS": 2300047,
    "TOO_MANY_HERO_IMAGES": 2300048,
    "INVALID_URL": 2300077,
    "MEDIA_URL_NOT_FACEBOOK": 2300077,
    "UNKNOWN_MACRO": 2300038,
}


def problem(code: str, detail: str) -> Problem:
    """A Problem with the MM error code that goes with its stable code."""
    assert code in PROBLEM_CODES, code
    return Problem(code=code, detail=detail, mm_error_code=MM_ERROR_CODES.get(code))


def change(code: str, detail: str) -> Change:
    assert code in CHANGE_CODES, code
    return Change(code=code, detail=detail)


def outcome_of(changes: list[Change], problems: list[Problem]) -> str:
    """The worst kind among the findings decides the outcome."""
    kinds = {PROBLEM_CODES[p.code][0] for p in problems}
    if "unsupported" in kinds:
        return "unsupported"
    if problems:
        return "needs_edit"
    if any(CHANGE_CODES[c.code][0] == "lossy" for c in changes):
        return "lossy"
    return "exact"


def json_copy(value):
    """A deep copy of a JSON value (much faster than copy.deepcopy for dicts/lists/scalars)."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value
