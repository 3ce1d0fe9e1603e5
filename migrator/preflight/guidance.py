"""What each preflight check means, what to do when it fails, and who does it: data, not code.

The set-up failures come from Meta's MM FAQ ("set-up" answers), the MM API reference's error table
and the onboarding guide
(https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/faq,
https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/api-reference,
https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/onboard-businesses).
`SETUP_STOPS` is shared with the executor: a send refused with one of these codes
stops that page (every campaign of it) with the same words preflight uses, and marks no subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass

MM_DOCS = ("https://developers.facebook.com/documentation/business-messaging/messenger-platform/"
           "marketing-messages-on-messenger/")
FAQ = MM_DOCS + "faq"
REF = MM_DOCS + "api-reference"
ONB = MM_DOCS + "onboard-businesses"
GS = MM_DOCS + "get-started"

WHO_PARTNER = "partner"
WHO_BUSINESS = "business admin"
WHO_META = "Meta"

# Meta's MM API reference
# (https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/api-reference):
# the app needs
# ads_management, pages_messaging and one of the two MM permissions (an older copy of that page lists
# only paid_marketing_messages).
REQUIRED_PERMISSIONS = ("ads_management", "pages_messaging")
MM_PERMISSIONS = ("paid_marketing_messages", "marketing_messages_messenger")

# Marketing API AdAccount.account_status values (AdAccount reference, not in the reference files):
# https://developers.facebook.com/docs/marketing-api/reference/ad-account/
ACCOUNT_STATUS = {1: "ACTIVE", 2: "DISABLED", 3: "UNSETTLED", 7: "PENDING_RISK_REVIEW",
                  8: "PENDING_SETTLEMENT", 9: "IN_GRACE_PERIOD", 100: "PENDING_CLOSURE", 101: "CLOSED",
                  201: "ANY_ACTIVE", 202: "ANY_CLOSED"}
# who can make a non-active account usable again
ACCOUNT_STATUS_WHO = {2: WHO_META, 7: WHO_META, 3: WHO_BUSINESS, 8: WHO_BUSINESS, 9: WHO_BUSINESS,
                      100: WHO_BUSINESS, 101: WHO_BUSINESS}


@dataclass(frozen=True)
class Guide:
    """One check: its title, what it means, what to do when it fails, who does it, the source."""

    title: str
    means: str
    action: str
    who: str
    source: str


GUIDES: dict[str, Guide] = {
    "token_permissions": Guide(
        "access token permissions",
        "The system-user (or user) token the executor sends with has been granted ads_management, "
        "pages_messaging and paid_marketing_messages or marketing_messages_messenger.",
        "Grant the missing permissions to the app's system user (Business Settings -> System users -> "
        "Assign assets / Generate token with these permissions); the app itself must have them approved in "
        "App Review. Without them sends fail with 2300039 or a (#200) permission error.",
        WHO_PARTNER, REF),
    "ad_account_access": Guide(
        "ad account in the token's assets",
        "The token can read the ad account: it is among the system user's assets.",
        "Have the business's admin assign this ad account to the partner's system user (or share it with the "
        "partner's Business Portfolio). An agency that is not Business Admin of the client's portfolio cannot; "
        "check the id belongs to the business's own portfolio.",
        WHO_BUSINESS, FAQ),
    "ad_account_status": Guide(
        "ad account status",
        "The ad account is ACTIVE (account_status 1): Meta bills MM to it like ads.",
        "A DISABLED or PENDING_RISK_REVIEW account can only be restored by Meta (request a review in Account "
        "Quality); UNSETTLED, PENDING_SETTLEMENT or IN_GRACE_PERIOD: the business settles the balance in "
        "Billing; a closed account: use another ad account in the plan.",
        WHO_BUSINESS, "https://developers.facebook.com/docs/marketing-api/reference/ad-account/"),
    "ad_account_currency": Guide(
        "ad account currency",
        "The plan's budgets and costs are in the ad account's currency (minor units): a plan written in "
        "another currency would spend a different amount than reviewed.",
        "Fix the currency of this ad account in the plan spec ([[ad_accounts]] currency) and the budgets with "
        "it, then make a new plan.",
        WHO_PARTNER, MM_DOCS + "send-messages"),
    "ad_account_budget_day": Guide(
        "budget day (time zone)",
        "The plan counts daily budgets per UTC day; Meta counts them per day in the ad account's time zone "
        "(timezone_name). Passes when the zone is UTC, when the account's campaigns have no daily budget, or "
        "when the planned sends fit every one of the account's days.",
        "Lower the sends per day (schedule.batches_per_day / batch_size) or raise the daily budget so each of "
        "the account's days fits, then make a new plan; otherwise Meta refuses the excess with 2300054 and "
        "those sends wait for the account's next day.",
        WHO_PARTNER, MM_DOCS + "send-messages"),
    "funding_source": Guide(
        "payment method",
        "The ad account has a funding source (payment method): MM messages are billed to it.",
        "The business adds a valid payment method to the ad account (Billing & payments); without one every "
        "send fails with 2300011.",
        WHO_BUSINESS, FAQ),
    "business_country": Guide(
        "business country",
        "The business of the ad account is in one of the countries allowed to use MM (rules: "
        "mm_business_countries).",
        "MM can only be used by a business in an MM country: use an ad account of a business registered in "
        "one, or keep these subscribers on RN where RN survives. Sends fail with 2300030 otherwise.",
        WHO_BUSINESS, GS),
    "page_access": Guide(
        "page in the token's assets",
        "The token can read the Page: it is among the system user's assets.",
        "Have the business's admin assign the Page to the partner's system user with messaging tasks (or "
        "connect it through onboarding); a Page in another Business Portfolio is not reachable.",
        WHO_BUSINESS, FAQ),
    "same_business": Guide(
        "page and ad account in one business",
        "The Page and the ad account that pays for its messages belong to the same Business Portfolio "
        "(the `business` field of both).",
        "Move the Page or the ad account into the same Business Portfolio, or map the page to an ad account "
        "of its own business in the plan spec ([pages.\"ID\"] ad_account).",
        WHO_BUSINESS, FAQ),
    "page_country": Guide(
        "page country",
        "The Page's country (its `location`) is one where MM may be used. Meta does not document how it "
        "decides a Page's region; when the Page shows no location this cannot be read.",
        "Use a Page of a business in an MM country; sends from a Page in an unsupported region fail with "
        "2300031.",
        WHO_BUSINESS, GS),
    "page_token": Guide(
        "page access token",
        "The Page token given for this page (the page -> token map, --page-tokens) is valid and is this "
        "Page's: `pull tokens` lists subscribers with it.",
        "Put a valid Page access token for this page in the map file (page_id<TAB>token, mode 0600); a token "
        "of another Page or a user token is refused.",
        WHO_PARTNER, MM_DOCS + "get-subscription-tokens"),
    "terms_of_service": Guide(
        "terms of service",
        "The business, the Page, the ad account and the app have accepted the Marketing Messages terms. "
        "Meta exposes no field for this: it shows only when a send is refused (2300013 business, 2300066 "
        "Page, 2300067 ad account, 2300069 required terms, 2300019 app).",
        "Have the business complete onboarding (Embedded Signup / the MM onboarding flow accepts the terms for "
        "the business, Page and ad account); the app's developer accepts the app terms in App Dashboard -> "
        "Messenger -> Messenger API Settings. The executor stops the page at the first such refusal and marks "
        "no subscriber; run it again once accepted.",
        WHO_BUSINESS, FAQ),
    "campaign_population": Guide(
        "campaign warm-up",
        "A new MM campaign needs about 60 minutes (up to 3 h seen) to populate before sends succeed "
        "(2300012, 2300041, 2300003, 2300028). This cannot be checked before the campaign exists.",
        "Nothing to fix: the executor creates campaigns first and waits out the warm-up (rules: "
        "warmup_wait_limit_hours); plan the first batch at least an hour after execution starts.",
        WHO_META, FAQ),
}


@dataclass(frozen=True)
class SetupStop:
    """A send-time refusal that means 'this page cannot send until a person fixes its set-up'."""

    code: int
    check: str        # the preflight check that covers it
    scope: str        # business | page | ad_account | app
    meaning: str


# Codes as numbered in the error table of Meta's MM API reference
# (https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/api-reference);
# 2300069 is a set-up stop only as that page reads it (terms not accepted); other Meta pages differ.
SETUP_STOPS: dict[int, SetupStop] = {s.code: s for s in (
    SetupStop(2300011, "funding_source", "ad_account", "the ad account has no payment method"),
    SetupStop(2300013, "terms_of_service", "business", "the business hasn't accepted the MM terms"),
    SetupStop(2300019, "terms_of_service", "app", "the app hasn't accepted the MM terms"),
    SetupStop(2300030, "business_country", "ad_account", "the ad account's region is not supported"),
    SetupStop(2300031, "page_country", "page", "the Page's region is not supported"),
    SetupStop(2300039, "token_permissions", "page", "no permission for the Page"),
    SetupStop(2300066, "terms_of_service", "page", "the Page hasn't signed the MM terms"),
    SetupStop(2300067, "terms_of_service", "ad_account", "the ad account hasn't signed the MM terms"),
    SetupStop(2300069, "terms_of_service", "business", "required terms of service not signed"),
)}


def setup_stop_text(code: int) -> tuple[str, str]:
    """(what happened, what to do and who) for a set-up refusal, in preflight's words."""
    s = SETUP_STOPS[code]
    g = GUIDES[s.check]
    return (f"{s.meaning} (Meta error {code})", f"{g.who}: {g.action}")


__all__ = ["ACCOUNT_STATUS", "GUIDES", "Guide", "MM_PERMISSIONS", "REQUIRED_PERMISSIONS", "SETUP_STOPS",
           "SetupStop", "WHO_BUSINESS", "WHO_META", "WHO_PARTNER", "setup_stop_text"]
