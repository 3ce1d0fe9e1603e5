"""The texts the emulator answers with: Meta's error table wording.

Where the API reference's error table was available word for word (2300000, the opening of
2300001, 2300023's "Valid button types are: web_url", 2300004's "could not be loaded ... or you
may not have permissions to load it", the FAQ's "message must be in active status" for 2300003)
the text is Meta's. For the other codes only Meta's meaning is known, not its exact wording, so the
emulator says that meaning; the `source` of each contract pair in
tests/contract/ says which. Clients must classify by code (and text only for 2300069-79),
never by these strings.

`USER_TITLES`: Graph sends `error_user_title` / `error_user_msg` with errors meant to be
shown to a person (GERR); the MM codes below are such errors (budget, region, terms, content),
so the emulator sends both for them, and never for the generic (#100) parameter errors.
"""

from __future__ import annotations

MESSAGES: dict[int, str] = {
    2300000: "You cannot send a message unless the message campaign under which the message exists is active.",
    2300001: "The message ID you supplied is invalid. The message with this ID either does not exist, or you "
             "do not have the permission to access it.",
    2300002: "You cannot send a message unless the message set under which the message exists is active.",
    2300003: "The message must be in active status before you can send it.",
    2300004: "The messenger subscription token could not be loaded. It may not exist, or you may not have "
             "permissions to load it.",
    2300005: "The messenger subscription token belongs to a different Page than the Page of the message.",
    2300006: "The message campaign is not a direct send campaign (is_direct_send = true).",
    2300007: "A daily budget or a lifetime budget is required.",
    2300008: "The default bid amount could not be fetched.",
    2300009: "The campaign metadata for this message is missing.",
    2300010: "No valid creative: the message payload is not valid.",
    2300011: "The ad account has no valid payment method.",
    2300012: "The message campaign is still being populated. Try again later.",
    2300013: "The business has not accepted the Marketing Messages Terms of Service.",
    2300014: "The ad account of the message campaign does not match the ad account in the request.",
    2300015: "The campaign budget has been reached.",
    2300016: "The bid amount is too low.",
    2300017: "The ad account spend limit has been reached.",
    2300018: "The attachment could not be saved. Please try again.",
    2300019: "The app has not accepted the Marketing Messages Terms of Service.",
    2300020: "Invalid pacing type for a direct send campaign.",
    2300021: "Video media type is missing video_id.",
    2300022: "Image media type is missing image_url.",
    2300023: "Invalid button type. Valid button types are: web_url",
    2300024: "Button URL is empty.",
    2300025: "Button title is empty.",
    2300026: "Too many buttons: a maximum of 3 buttons per message is allowed.",
    2300027: "The attachment was uploaded by a different Page and cannot be reused.",
    2300028: "Pacing info is not ready at send time. Check the ad account status and payment method, then "
             "retry after 1 hour.",
    2300030: "The ad account is in a region that is not supported.",
    2300031: "The Page is in a region that is not supported.",
    2300032: "The subscription token is not in a supported region.",
    2300033: "The campaign start time is in the future.",
    2300034: "The subscriber has stopped receiving marketing messages.",
    2300035: "The minimum delay between messages to this subscriber has not been reached.",
    2300036: "The recipient cannot receive this message right now.",
    2300037: "The subscription token has expired.",
    2300038: "A placeholder in the message could not be resolved.",
    2300039: "You do not have permission to send messages for this Page.",
    2300040: "This feature is not available.",
    2300041: "The message campaign is not ready for delivery yet.",
    2300042: "WEEKLY_MM_LOAD_CAP_REACHED: the recipient has reached the marketing message frequency cap.",
    2300043: "DAILY_MM_LOAD_CAP_REACHED: the recipient has reached the marketing message frequency cap.",
    2300044: "MIN_ORGANIC_THREAD_NOT_REACHED: the recipient has reached the marketing message frequency cap.",
    2300046: "Multiple images (image_urls) are not allowed in a carousel.",
    2300047: "Use either image_url or image_urls, not both.",
    2300048: "Only one hero image is allowed.",
    2300052: "The recipient is not available right now.",
    2300053: "The campaign's lifetime budget has been reached.",
    2300054: "The campaign's daily budget has been reached.",
    2300055: "The message cannot be sent right now. Retry in about 30 minutes.",
    2300056: "The ad account's total spending limit has been reached.",
    2300057: "The message cannot be sent right now. Retry later.",
    2300058: "The prepaid balance of the ad account is exhausted.",
    2300059: "The business's stored balance is too low.",
    2300060: "The message cannot be sent right now. Retry later.",
    2300061: "The message cannot be sent right now. Retry in about 30 minutes.",
    2300062: "The message cannot be sent right now. Retry in about 30 minutes.",
    2300063: "The request cannot be processed right now.",
    2300064: "The creative is already used by another campaign.",
    2300065: "page_id is missing.",
    2300066: "The Page has not signed the Marketing Messages Terms of Service.",
    2300067: "The ad account has not signed the Marketing Messages Terms of Service.",
    2300068: "The request cannot be processed right now.",
    2300069: "The required Terms of Service have not been signed.",
    2300070: "Invalid targeting.",
    2300071: "Invalid aliases.",
    2300072: "Invalid offer.",
    2300073: "Too many line breaks in the message.",
    2300074: "The creative is missing a required CTA button.",
    2300075: "Invalid button order.",
    2300076: "A required field is missing.",
    2300077: "Invalid URL.",
    2300078: "Send rate limit exceeded. Please slow down.",
    2300079: "Campaign creation rate limit exceeded. Please slow down.",
    2300080: "Subscriber token query rate limit exceeded.",
    1893047: "The recipient is not available (RECIPIENT_NOT_AVAILABLE).",
}

# error_user_title for the MM codes that carry one (see the module docstring).
USER_TITLES: dict[int, str] = {
    2300011: "No payment method", 2300013: "Terms not accepted", 2300015: "Budget reached",
    2300017: "Spend limit reached", 2300019: "Terms not accepted", 2300030: "Region not supported",
    2300031: "Region not supported", 2300032: "Region not supported", 2300034: "Subscriber opted out",
    2300035: "Message sent too soon", 2300053: "Budget reached", 2300054: "Daily budget reached",
    2300056: "Spend limit reached", 2300058: "Balance exhausted", 2300059: "Balance too low",
    2300066: "Terms not accepted", 2300067: "Terms not accepted", 2300023: "Invalid button type",
    2300026: "Too many buttons", 2300022: "Image missing", 2300021: "Video missing",
}

#: Graph's ad-account throttle (GRL/MRL): 80004 with subcode 2446079.
ADS_THROTTLE_MESSAGE = ("(#80004) There have been too many calls to this ad-account. Wait a bit and try again. "
                        "For more info, please refer to "
                        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.")
ADS_THROTTLE_SUBCODE = 2446079
