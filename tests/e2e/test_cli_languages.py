"""The command line in each language, and its tables at 80 columns: real processes."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiserver import free_socket
from rich.cells import cell_len

from shouhou.bootstrap import Engine
from shouhou.clock import VirtualClock
from shouhou.domain.model import Order
from shouhou.domain.values import SHANGHAI
from shouhou.hanzi import CHARACTERS
from shouhou.policy.loader import Registry
from shouhou.policy.schema import BasePack

T0 = datetime(2023, 3, 1, 10, tzinfo=SHANGHAI)
H = timedelta(hours=1)
#: Characters written only in Simplified Chinese: none may show in zh-Hant output.
SIMPLIFIED_ONLY = frozenset(CHARACTERS)
SCENARIOS = sorted((Path(__file__).parents[2] / "examples" / "scenarios").glob("*.yaml"))


def shouhou(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shouhou", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", **env},
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A shop with c1 awaiting the seller and c2 in platform intervention."""
    path = tmp_path_factory.mktemp("languages") / "shop.db"
    clock = VirtualClock(T0)
    engine = Engine.open(f"sqlite:///{path}", clock=clock)

    def act(action: str, actor: str, case: str, **params: Any) -> None:
        engine.execute(engine.build(action, actor=actor, target={"case_id": case}, params=params))

    try:
        for order in ("o1", "o2"):
            engine.place_order(
                Order(
                    id=order,
                    shop="s1",
                    buyer="b1",
                    total=9900,
                    created_at=T0 - 3 * H,
                    paid_at=T0 - 2 * H,
                )
            )
        clock.advance(H)
        act(
            "apply",
            "buyer:b1",
            "c1",
            order="o1",
            kind="refund_only",
            reason="no_reason",
            amount=9900,
        )
        act(
            "apply", "buyer:b1", "c2", order="o2", kind="refund_only", reason="quality", amount=5000
        )
        act("refuse", "seller:s1", "c2", reason="no fault found")
        act("request_intervention", "buyer:b1", "c2")
    finally:
        engine.close()
    yield str(path)


def _traditional_only(text: str) -> None:
    simplified = sorted(set(text) & SIMPLIFIED_ONLY)
    assert not simplified, f"simplified characters in zh-Hant output: {''.join(simplified)}"


def test_case_show_in_zh_hant_writes_traditional_characters(db: str) -> None:
    done = shouhou("case", "show", "c1", "--db", db, "--lang", "zh-Hant")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "售後單 c1" in out and "買家 b1" in out
    assert "僅退款 · 七天無理由 · 售中 · 等待賣家處理" in out
    assert "買家申請售後" in out and "時間線" in out
    assert "賣家需在" in out  # the explanation, converted from zh-Hans
    _traditional_only(out)


def test_case_show_in_zh_hans_and_en(db: str) -> None:
    hans = shouhou("case", "show", "c1", "--db", db, "--lang", "zh")
    assert hans.returncode == 0, hans.stderr
    assert "售后单 c1" in hans.stdout and "等待卖家处理" in hans.stdout
    en = shouhou("case", "show", "c1", "--db", db, "--lang", "EN")
    assert en.returncode == 0, en.stderr
    assert "case c1" in en.stdout and "awaiting_seller" in en.stdout and "Applied" in en.stdout
    assert not re.search(r"[\u4e00-\u9fff]", en.stdout.split("why")[0])


def test_case_replies_in_zh_hant_convert_the_zh_hans_replies(db: str) -> None:
    done = shouhou("case", "replies", "c1", "--db", db, "--lang", "zh-Hant")
    assert done.returncode == 0, done.stderr
    assert "等待賣家處理" in done.stdout and "聯繫買家" in done.stdout
    assert "親, 您好呀" in done.stdout
    _traditional_only(done.stdout)
    lines = shouhou("case", "replies", "c1", "--db", db, "--lang", "zh-hant", "--json").stdout
    assert lines and all('"lang": "zh-Hant"' in line for line in lines.splitlines())


def test_queue_interventions_in_zh_hant(db: str) -> None:
    done = shouhou("queue", "interventions", "--db", db, "--lang", "zh-Hant")
    assert done.returncode == 0, done.stderr
    assert "平台介入中的售後單" in done.stdout
    assert "c2" in done.stdout and "舉證" in done.stdout and "質量問題" in done.stdout
    assert "1 個售後單在平台介入中" in done.stdout
    _traditional_only(done.stdout)


def test_shop_metrics_in_zh_hant(db: str) -> None:
    at = (T0 + 2 * H).isoformat()
    done = shouhou("shop", "metrics", "s1", "--at", at, "--db", db, "--lang", "zh-Hant")
    assert done.returncode == 0, done.stderr
    assert "店鋪 s1" in done.stdout and "支付訂單 2 筆" in done.stdout
    assert "指標" in done.stdout and "退款糾紛率" in done.stdout
    _traditional_only(done.stdout)


def test_one_default_for_every_command_from_shouhou_lang_then_the_locale(db: str) -> None:
    for args in (("case", "show", "c1"), ("case", "explain", "c1"), ("queue", "interventions")):
        by_locale = shouhou(*args, "--db", db, LANG="zh_TW.UTF-8")
        assert by_locale.returncode == 0, by_locale.stderr
        _traditional_only(by_locale.stdout)
        assert "賣家" in by_locale.stdout or "售後" in by_locale.stdout
        by_setting = shouhou(*args, "--db", db, SHOUHOU_LANG="zh-Hans", LANG="zh_TW.UTF-8")
        assert "卖家" in by_setting.stdout or "售后" in by_setting.stdout
        plain = shouhou(*args, "--db", db)
        assert not re.search(r"[\u4e00-\u9fff]", plain.stdout.split("why")[0])


def test_the_global_lang_option_applies_and_a_command_option_overrides_it(db: str) -> None:
    glob = shouhou("--lang", "zh-Hant", "queue", "interventions", "--db", db)
    assert glob.returncode == 0, glob.stderr
    assert "售後單" in glob.stdout
    both = shouhou("--lang", "zh-Hant", "queue", "interventions", "--db", db, "--lang", "en")
    assert "1 case in intervention" in both.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("case", "show", "c1", "--lang", "fr"),
        ("--lang", "fr", "queue", "interventions"),
        ("shop", "metrics", "s1", "--lang", "fr"),
        ("policy", "show", "tmall-standard", "--lang", "fr"),
    ],
)
def test_an_unknown_language_exits_2_listing_the_choices(db: str, args: tuple[str, ...]) -> None:
    done = shouhou(*args, "--db", db) if args[0] != "policy" else shouhou(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "unknown language 'fr'" in done.stderr
    assert "en, zh-Hans, zh-Hant" in done.stderr


def test_an_unknown_shouhou_lang_exits_2_naming_the_variable(db: str) -> None:
    done = shouhou("case", "show", "c1", "--db", db, SHOUHOU_LANG="klingon")
    assert done.returncode == 2
    assert "SHOUHOU_LANG" in done.stderr and "en, zh-Hans, zh-Hant" in done.stderr
    assert "Traceback" not in done.stderr


# --- tables at 80 columns -------------------------------------------------------------------


def _fits(text: str, width: int = 80) -> None:
    wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not wide, wide[:3]
    for line in text.splitlines():  # a table cut at the screen's edge loses its right border
        if line[:1] in "┏┃┡│├└":
            assert line[-1] in "┓┃┩│┤┘", line


def test_keys_list_at_80_columns_shows_ids_that_keys_revoke_takes(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    created = []
    for principal in ("platform", "agent:agent-with-a-long-name", "seller:shop-0001", "buyer:b1"):
        done = shouhou("keys", "create", principal, "--name", "a key for the tests", "--db", db)
        assert done.returncode == 0, done.stderr
        created.append(done.stdout.split()[0])
    for lang in ("en", "zh-Hant"):
        listed = shouhou("keys", "list", "--db", db, "--lang", lang, COLUMNS="80")
        assert listed.returncode == 0, listed.stderr
        _fits(listed.stdout)
        shown = re.findall(r"key_[0-9a-f]+", listed.stdout)
        assert sorted(shown) == sorted(created)
    revoked = shouhou("keys", "revoke", shown[0], "--db", db, COLUMNS="80")
    assert revoked.returncode == 0, revoked.stderr


@pytest.mark.parametrize("lang", ["en", "zh-Hant"])
def test_policy_show_at_80_columns_shows_every_rule_id_whole_with_its_text(lang: str) -> None:
    done = shouhou("policy", "show", "tmall-standard", "--lang", lang, COLUMNS="80")
    assert done.returncode == 0, done.stderr
    _fits(done.stdout)
    pack = Registry.default().versions("tmall-standard")[-1].pack
    assert isinstance(pack, BasePack)
    for name in [*pack.deadlines, *pack.limits]:
        assert f"tmall-standard/{name}" in done.stdout
    said = "The seller must answer" if lang == "en" else "賣家需在5天內處理"
    assert said in done.stdout


# --- the long-running commands, scenario run and the first-run refusals ---------------------


def _paid_orders(db: Path, count: int) -> None:
    """``count`` orders paid five days ago: their ``ship_by`` (72 h) is past due."""
    paid = datetime.now(SHANGHAI) - timedelta(days=5)
    engine = Engine.open(f"sqlite:///{db}", attachments=None)
    try:
        for n in range(1, count + 1):
            engine.place_order(
                Order(id=f"o{n}", shop="s1", buyer="b1", total=100, created_at=paid, paid_at=paid)
            )
    finally:
        engine.close()


def test_worker_once_says_what_it_did_in_zh_hant_and_keeps_stdout_json(tmp_path: Path) -> None:
    db = tmp_path / "worker.db"
    _paid_orders(db, 2)

    hant = shouhou("worker", "--once", "--db", str(db), "--lang", "zh-Hant")
    en = shouhou("worker", "--once", "--db", str(db))

    assert hant.returncode == 0 and en.returncode == 0, hant.stderr + en.stderr
    assert [json.loads(line)["fired"] for line in hant.stdout.splitlines()] == ["ship_by"] * 2
    assert "worker: 觸發 2 個時限, 擱置 0 個, 投遞 0 次, 失敗 0 次, 清除 0 行" in hant.stderr
    _traditional_only(hant.stderr)
    assert en.stderr.strip() == (
        "worker: 0 deadline(s) fired, 0 set aside, 0 delivery(ies) sent, 0 failed, "
        "0 row(s) forgotten"
    )


def test_a_failed_worker_pass_is_logged_in_zh_hant_as_text_and_in_english_as_json(
    tmp_path: Path,
) -> None:
    db = tmp_path / "worker.db"
    _paid_orders(db, 1)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE deadlines RENAME TO deadlines_away")
    env = {"PATH": "/usr/bin:/bin", "SHOUHOU_ATTACHMENTS_DIR": str(tmp_path / "files")}
    base = [sys.executable, "-m", "shouhou", "worker", "--db", str(db), "--lang", "zh-Hant"]
    workers = [
        subprocess.Popen([*base, *extra], stderr=subprocess.PIPE, text=True, env=env)
        for extra in ([], ["--log-format", "json"])
    ]
    try:
        text, as_json = (w.stderr.readline() for w in workers if w.stderr is not None)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
            w.communicate(timeout=30)
    assert text.startswith("worker 本輪處理失敗 (OperationalError: "), text
    assert "deadlines" in text and text.rstrip().endswith("1 秒後重試"), text
    _traditional_only(text)
    message = json.loads(as_json)["message"]
    assert message.startswith("worker pass failed (OperationalError: "), message
    assert message.endswith("; trying again in 1s"), message


def test_scenario_run_tallies_in_zh_hant_and_keeps_stdout_json(tmp_path: Path) -> None:
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("name: [unclosed\n", encoding="utf-8")
    files = (str(SCENARIOS[0]), str(invalid))

    hant = shouhou("--lang", "zh-Hant", "scenario", "run", *files)
    en = shouhou("scenario", "run", *files)

    assert hant.returncode == en.returncode == 2
    assert hant.stdout == en.stdout  # JSON lines, untranslated
    assert all(json.loads(line) for line in hant.stdout.splitlines())
    assert hant.stderr.splitlines() == ["1 個通過, 0 個失敗", "1 個無效文件"]
    assert en.stderr.splitlines() == ["1 passed, 0 failed", "1 invalid file(s)"]


def test_demo_prints_its_tables_and_refusal_in_zh_hant(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    tiny = ("--days", "2", "--settle-days", "4", "--orders-per-day", "24")

    made = shouhou("demo", "--db", str(db), *tiny, "--lang", "zh-Hant")
    refused = shouhou("demo", "--db", str(db), *tiny, "--lang", "zh-Hant")

    assert made.returncode == 0, made.stderr
    out = made.stdout
    assert "模擬中 第 7 天 (收尾期) · " in out
    for line in ("各狀態的售後單", "狀態", "合計", "退款金額(元)", "因超時而退款"):
        assert line in out
    assert "按規則統計的已觸發時限" in out and "觸發次數" in out
    assert "tmall-standard/ship_by" in out  # rule ids are names, as written
    assert "看一個: .venv/bin/shouhou case show c0000" in out
    _traditional_only(out)
    assert refused.returncode == 1
    assert f"錯誤: {db} 中已有數據; 加 --fresh 可從頭開始" in refused.stderr


def test_demo_in_english_prints_its_tables_as_before(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    made = shouhou(
        "demo", "--db", str(db), "--days", "2", "--settle-days", "4", "--orders-per-day", "24"
    )

    assert made.returncode == 0, made.stderr
    lines = [line.strip(" ┃│") for line in made.stdout.splitlines()]
    assert lines[0].startswith("simulating day 7 (settling) · ")
    for title in ("cases by status", "refunds", "deadlines fired, by rule"):
        assert title in lines
    assert any(re.fullmatch(r"status\s+┃ cases", line) for line in lines), lines
    assert any(re.fullmatch(r"refunded because a deadline passed\s+│\s+\d+", x) for x in lines)
    assert any(re.fullmatch(r"rule\s+┃ fired", line) for line in lines), lines
    assert re.search(r"^Look at one: \.venv/bin/shouhou case show c\d+ --db ", made.stdout, re.M)
    assert not re.search(r"[\u4e00-\u9fff]", made.stdout)


def test_a_read_command_on_a_missing_database_or_schema_says_so_in_zh_hant(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere.db"
    empty = tmp_path / "empty.db"
    empty.touch()

    none = shouhou("keys", "list", "--db", str(missing), "--lang", "zh-Hant")
    bare = shouhou("--lang", "zh-Hant", "queue", "interventions", "--db", str(empty))

    assert none.returncode == bare.returncode == 1
    assert none.stderr.startswith(f"錯誤: {missing} 沒有數據庫; 可用 `shouhou db upgrade --db")
    assert bare.stderr.startswith(f"錯誤: {empty} 沒有 shouhou 的表結構; 請用 `shouhou db upgrade`")
    assert not missing.exists()


def test_an_unreadable_pack_file_is_a_policy_error_in_zh_hant(tmp_path: Path) -> None:
    pack = tmp_path / "gone.yaml"
    done = shouhou(
        "worker",
        "--once",
        "--policy",
        str(pack),
        "--db",
        str(tmp_path / "w.db"),
        "--lang",
        "zh-Hant",
    )

    assert done.returncode == 2
    assert f"{pack}: 無法讀取: No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_says_a_port_in_use_in_zh_hant(tmp_path: Path) -> None:
    holder = free_socket()
    holder.listen()
    port = holder.getsockname()[1]
    try:
        done = shouhou(
            "serve", "--db", str(tmp_path / "s.db"), "--port", str(port), "--lang", "zh-Hant"
        )
    finally:
        holder.close()

    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"錯誤: 無法監聽 127.0.0.1:{port}: ")
    assert done.stderr.rstrip().endswith("(是否已有服務器在運行? 試試 --port)")


def test_serve_prints_its_startup_lines_and_demo_keys_in_zh_hant(tmp_path: Path) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    args = ["serve", "--db", str(tmp_path / "s.db"), "--port", str(port), "--demo-keys"]
    process = subprocess.Popen(
        [sys.executable, "-m", "shouhou", "--lang", "zh-Hant", *args, "--keep-days", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "shouhou serve exited"
            assert time.monotonic() < deadline, "shouhou serve did not answer /health"
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert process.returncode == 0, output
    assert f"shouhou API 地址 {url}  (OpenAPI 文檔: {url}/docs)" in output
    assert f"售後工作台: {url}/" in output
    assert "規則包: tmall-standard + cny-2020 + cny-2022" in output
    links = re.findall(rf"以 (\w+):\S+ 登入: {url}/console/demo/\S+", output)
    assert links == ["買家", "賣家", "客服"], output
    assert "身份" in output and "API 密鑰 (Authorization: Bearer …)" in output
    tokens = dict(re.findall(r"│ (\S+)\s+│ (shk_\S+)", output))
    assert "平台" in tokens and "客服:a1" in tokens
    assert f'試試: curl -H "Authorization: Bearer {tokens["買家:b1"]}" {url}/v1/cases' in output
    assert (
        "worker: 每 1.0 秒處理時限和 webhook, 時限到期前 1d 發送 deadline.approaching, " in output
    )
    assert "已處理的時限和已投遞的事件保留 7 天" in output
    _traditional_only(output)


def test_an_unknown_time_zone_is_refused_in_zh_hant(tmp_path: Path) -> None:
    db = str(tmp_path / "z.db")
    done = shouhou("worker", "--once", "--db", db, "--lang", "zh-Hant", SHOUHOU_TIMEZONE="Mars/X")

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "錯誤: SHOUHOU_TIMEZONE='Mars/X' 不是時區: 請寫一個時區名, 如 Asia/Shanghai"
    )
    assert not (tmp_path / "z.db").exists()
