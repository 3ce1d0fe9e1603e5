"""The catalogue of audit findings: stable codes, severity, explanation, remedy, rule source.

Codes are a contract (reports, the planner and people's queries use them): never rename
one, only add. Token findings are stored as a bit mask (`audit_tokens.flags`, bit = the
finding's `bit`) so a million tokens cost one integer each; `v_audit_token_findings`
expands the mask into rows. Page and content findings work the same way in their tables.
Explanations may use `{as_of}`, `{cutoff}`, `{days}`, `{cutoff_when}` ("12 days after ...", "293 days before ...") and rule values; they are rendered
per audit run into `audit_run_findings`.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrator.rules import Rules

INFO, WARNING, ERROR = "info", "warning", "error"
TOKEN, PAGE, CONTENT = "token", "page", "content"


@dataclass(frozen=True)
class Finding:
    code: str
    bit: int
    scope: str          # token | page | content
    severity: str       # info | warning | error
    explanation: str    # one line, format() with the run's context
    remedy: str
    rules: tuple[str, ...] = ()  # rules entries whose sources back this finding
    extra_sources: tuple[str, ...] = ()

    @property
    def mask(self) -> int:
        return 1 << self.bit

    def sources(self, rules: Rules) -> list[str]:
        out: list[str] = []
        for name in self.rules:
            for s in getattr(rules, name).sources:
                if s not in out:
                    out.append(s)
        return out + [s for s in self.extra_sources if s not in out]


_FAQ = ("https://developers.facebook.com/documentation/business-messaging/messenger-platform/"
        "marketing-messages-on-messenger/faq")
_TOKENS = ("https://developers.facebook.com/documentation/business-messaging/messenger-platform/"
           "marketing-messages-on-messenger/get-subscription-tokens")
_REF = ("https://developers.facebook.com/documentation/business-messaging/messenger-platform/"
        "marketing-messages-on-messenger/api-reference")
_SEND = ("https://developers.facebook.com/documentation/business-messaging/messenger-platform/"
         "marketing-messages-on-messenger/send-messages")

FINDINGS: tuple[Finding, ...] = (
    # --- token findings ---------------------------------------------------------------
    Finding("OPTED_OUT", 0, TOKEN, INFO,
            "The subscriber stopped these messages (RN stop) or opted out of MM (2300034).",
            "Never message this token; only a new opt-in by the person can bring it back.",
            extra_sources=(_REF, _FAQ)),
    Finding("RECIPIENT_EXCLUDED_FROM_MM", 1, TOKEN, WARNING,
            "The recipient is in a geo MM does not deliver to ({mm_excluded}).",
            "Keep this subscriber on RN (it keeps working in these geos); do not plan MM sends.",
            ("mm_recipient_exclusions",)),
    Finding("REGION_UNKNOWN", 2, TOKEN, WARNING,
            "No explicit country and no usable time zone (missing, UTC, Etc/* or unknown).",
            "Add a `country` column for these tokens (CRM join) and re-ingest; then re-run the audit.",
            ("mm_recipient_exclusions", "rn_exempt_geos")),
    Finding("REGION_AMBIGUOUS", 3, TOKEN, WARNING,
            "The time zone covers several countries that get different verdicts (see candidates).",
            "Add an explicit `country` for these tokens; until then they are not planned.",
            ("mm_recipient_exclusions", "rn_exempt_geos")),
    Finding("REGION_INFERRED", 4, TOKEN, INFO,
            "The recipient's country is inferred from the time zone, not known.",
            "Nothing required; an explicit `country` column makes the verdict certain.",
            ("mm_recipient_exclusions",)),
    Finding("REGION_CONFLICT", 5, TOKEN, WARNING,
            "The partner's country says MM may deliver, but an MM send failed with 2300032 "
            "(token not in a supported region).",
            "Check the partner's country data for this subscriber; Meta's refusal stands until then.",
            ("mm_recipient_exclusions",), (_REF,)),
    Finding("BUSINESS_COUNTRY_UNSUPPORTED", 6, TOKEN, ERROR,
            "The page's business country is not one of the {n_business} countries allowed to use MM.",
            "MM needs a business in an allowed country; otherwise these subscribers can only stay on RN "
            "where RN survives.",
            ("mm_business_countries",)),
    Finding("BUSINESS_COUNTRY_UNKNOWN", 7, TOKEN, WARNING,
            "The token's page has no business country (or the page was never ingested).",
            "Run `migrator ingest pages pages.csv` with business_country filled in.",
            ("mm_business_countries",)),
    Finding("LEGACY_EXPIRY_PASSED", 8, TOKEN, WARNING,
            "The token's legacy expiry time has passed. Meta says tokens stopped expiring on "
            "{expiry_ended}; one whose expiry passed before then may be dead (RN code 100, MM 2300037).",
            "Plan it as usual: a 2300037 answer marks it expired (then only a new opt-in helps) "
            "and an undelivered MM costs nothing.",
            ("rn_token_expiry_ended",), (_REF,)),
    Finding("TOKEN_EXPIRED", 9, TOKEN, ERROR,
            "An MM send was refused because the token is expired or cannot be loaded (2300037/2300004).",
            "Ask the person to opt in again (opt-in template or m.me link); the old token is dead.",
            ("rn_token_expiry_ended",), (_REF,)),
    Finding("DUPLICATE_PERSON_TOKEN", 10, TOKEN, INFO,
            "The same person has another token on this page; one send per person is enough.",
            "Nothing required: plans send to one token per person (is_primary = 1).",
            extra_sources=(_TOKENS, _FAQ)),
    Finding("RN_DISCONTINUED", 11, TOKEN, WARNING,
            "RN sends fail for this recipient since {cutoff} (outside {exempt}).",
            "Move the subscriber to MM; RN is no longer a path here.",
            ("rn_discontinuation", "rn_exempt_geos")),
    Finding("RN_DISCONTINUATION_COUNTDOWN", 12, TOKEN, WARNING,
            "RN stops working for this recipient on {cutoff}: {cutoff_when}.",
            "Migrate before {cutoff}; after it this subscriber is reachable only through MM.",
            ("rn_discontinuation", "rn_exempt_geos", "rn_deprecation_announced")),
    Finding("RN_CADENCE_48H", 13, TOKEN, INFO,
            "Staying on RN: at most one send per rolling {rn_hours} h per token.",
            "Schedule RN sends at least {rn_hours} h apart (honour next_eligible_time).",
            ("rn_cadence_change", "rn_cadence_hours")),
    Finding("RN_DAILY_FREQUENCY_LOST", 14, TOKEN, WARNING,
            "A legacy DAILY token staying on RN cannot get daily sends any more (one per {rn_hours} h).",
            "Tell the business its daily cadence halves; adjust the content calendar.",
            ("rn_cadence_change", "rn_cadence_hours")),
    Finding("MM_CADENCE_12H", 15, TOKEN, INFO,
            "On MM: at most one message per token per {mm_hours} h, plus Meta's automatic frequency caps.",
            "Plan one MM per person per {mm_hours} h; expect 2300035/2300042-44 refusals otherwise.",
            ("mm_cadence_hours",)),
    Finding("MM_NOT_LAUNCHED", 16, TOKEN, INFO,
            "As of {as_of} the Marketing Message API is not available yet (launch {mm_launch}).",
            "Nothing to do before the launch; RN works everywhere until {cutoff}.",
            ("mm_launch",)),
    Finding("RN_ONLY_UNTIL_CUTOFF", 17, TOKEN, ERROR,
            "Only RN reaches this subscriber, and RN stops for them on {cutoff} ({cutoff_when}); "
            "MM cannot take over (the business or the recipient is outside MM).",
            "RN sends still work until {cutoff}; after that the subscriber is lost unless the page "
            "gets a business in one of the {n_business} MM countries (and the recipient is outside "
            "{mm_excluded}).",
            ("rn_discontinuation", "rn_exempt_geos", "mm_business_countries", "mm_recipient_exclusions")),
    Finding("TOKEN_PAGE_MISMATCH", 18, TOKEN, WARNING,
            "Meta refused an MM send with 2300005: the token belongs to another Page than the one it is "
            "filed under (the page named in the token's detail); a success on that page showed its setup is "
            "fine, so this is about the token, not the page.",
            "Find the Page the token came from (the source file's page_id column; `migrator pull tokens` per "
            "page) and re-ingest it under that Page, then re-run the audit. Until then it is not planned; "
            "it is not marked invalid.",
            ("breaker_codes",), (_REF,)),
    # --- page findings ----------------------------------------------------------------
    Finding("PAGE_NO_AD_ACCOUNT", 0, PAGE, WARNING,
            "The page has tokens to migrate but no ad account; MM sends go through act_<AD_ACCOUNT_ID>.",
            "Add ad_account_id for the page (pages CSV) and re-ingest pages.",
            ("mm_business_countries",), (_SEND,)),
    Finding("PAGE_BUSINESS_COUNTRY_UNSUPPORTED", 1, PAGE, ERROR,
            "The page's business country is not allowed to use MM.",
            "Use a business in one of the {n_business} MM countries, or keep RN where it survives.",
            ("mm_business_countries",)),
    Finding("PAGE_BUSINESS_COUNTRY_UNKNOWN", 2, PAGE, WARNING,
            "The page has no business country (or no row in the pages file).",
            "Ingest pages with business_country.",
            ("mm_business_countries",)),
    Finding("PAGE_NOT_INGESTED", 3, PAGE, WARNING,
            "Tokens reference this page but it is not in the pages table.",
            "Add the page to pages.csv (page_id, name, business_country, ad_account_id, currency).",
            ("mm_business_countries",)),
    Finding("PAGE_CONTENT_NEEDS_WORK", 4, PAGE, WARNING,
            "Some of the page's content needs edits or cannot be converted to MM.",
            "Edit or replace that content (see audit_contents / `migrator convert`).",
            ("mm_text_max_chars", "mm_buttons_max")),
    # --- content findings -------------------------------------------------------------
    Finding("CONTENT_LOSSY", 0, CONTENT, INFO,
            "Converts to MM with something dropped or changed (see contents.changes).",
            "Review the converted message before it is sent.",
            ("mm_text_max_chars", "mm_buttons_max")),
    Finding("CONTENT_NEEDS_EDIT", 1, CONTENT, WARNING,
            "Cannot be sent on MM as is (e.g. text over {mm_text} chars, more than {mm_buttons} buttons).",
            "Edit the content (or map an override message in the plan spec).",
            ("mm_text_max_chars", "mm_buttons_max")),
    Finding("CONTENT_UNSUPPORTED", 2, CONTENT, ERROR,
            "No MM equivalent (e.g. audio or file attachments).",
            "Replace it with a supported format (text, generic, button, media template).",
            ("mm_text_max_chars",), (_REF,)),
    Finding("CONTENT_NOT_CONVERTED", 3, CONTENT, WARNING,
            "The converter has not classified this content yet.",
            "Run the converter over the workspace content, then re-run the audit.",
            ("mm_text_max_chars",)),
)

BY_CODE = {f.code: f for f in FINDINGS}


def of_scope(scope: str) -> list[Finding]:
    return [f for f in FINDINGS if f.scope == scope]


def mask(*codes: str) -> int:
    m = 0
    for c in codes:
        m |= BY_CODE[c].mask
    return m


def decode(flags: int, scope: str = TOKEN) -> list[str]:
    """The codes set in a flags integer."""
    return [f.code for f in of_scope(scope) if flags & f.mask]
