"""A tiny hand-made estate, through the CLI as a person runs it: one page whose business is
registered in JP (MM refused) with a single subscription that depends on RN, and one page in an
MM country. Words must agree with their numbers ("1 of these subscriptions")."""

from __future__ import annotations

import json


PAGES = '''page_id,name,business_country,ad_account_id,currency
100000000000002,\U0001F363 Sushi Tokyo Bar,JP,1000000000000002,JPY
100000000000004,"<script>alert('x')</script> Loja & ""Filhos""",BR,1000000000000004,BRL
'''
# the JP page: two JP recipients (stay on RN) and one in the US (needs MM, which a JP business
# cannot use: lost on the date); the BR page: three BR recipients to move
TOKENS = """page_id,token,psid,topic_title,timezone,country,token_status
100000000000002,10000000000000007919,5000000000000001,Offers,Asia/Tokyo,JP,active
100000000000002,10000000000000015838,5000000000000002,Offers,Asia/Tokyo,JP,active
100000000000002,10000000000000023757,5000000000000003,Offers,America/New_York,US,active
100000000000004,10000000000000031676,5000000000000004,Offers,America/Sao_Paulo,BR,active
100000000000004,10000000000000039595,5000000000000005,Offers,America/Sao_Paulo,BR,active
100000000000004,10000000000000047514,5000000000000006,Offers,America/Sao_Paulo,BR,active
"""


def _estate(cli, tmp_path, as_of="2026-01-20"):
    (tmp_path / "pages.csv").write_text(PAGES, encoding="utf-8")
    (tmp_path / "tokens.csv").write_text(TOKENS, encoding="utf-8")
    for args in (("ingest", "pages", tmp_path / "pages.csv"), ("ingest", "tokens", tmp_path / "tokens.csv"),
                 ("audit", "--as-of", as_of)):
        r = cli(*args)
        assert r.exit_code == 0, r.output


def test_one_subscription_reads_one_of_these_subscriptions(cli, tmp_path):
    _estate(cli, tmp_path)
    r = cli("report", "readiness", "--json")
    assert r.exit_code == 0, r.output
    pages = {p["page_id"]: p for p in json.loads(r.output)["pages"]}
    jp = pages["100000000000002"]
    assert jp["subscribers"]["lost"] == 1
    assert jp["deadline_label"] == ("RN stops on 2026-02-10, 21 days left: 1 of these subscriptions is neither "
                                    "on MM nor sure to keep RN"), jp["deadline_label"]
    assert "3 of these subscriptions are neither" in pages["100000000000004"]["deadline_label"]
    r = cli("report", "readiness", "-o", tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "1 of these subscription " not in html and "1 of these subscriptions is" in html
    assert "<script>alert" not in html
