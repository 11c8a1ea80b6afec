"""The panel's main journeys clicked through in Debian's chromium, as the people who use it would:
a liaison files its resource list (the add form, then 提交审核) and imports a filled-in Excel
template; the community admin accepts and dispatches a need to that liaison's unit; the liaison
takes it and closes it; the admin pays the return visit with a rating; the auditor exports the
needs as CSV and the file opens with its Chinese intact. Every request to another host is
refused. Each step leaves a screenshot in the git-ignored artifacts/ folder."""
import csv
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import text

from app import clock
from tests.browser.conftest import ARTIFACTS, log_in, offline_page

pytestmark = pytest.mark.browser

RESOURCE = "社区共享图书角（浏览器旅程）"
IMPORTED = ["法律咨询志愿者（Excel导入）", "普法宣传展板（Excel导入）"]


class Visit:
    """One user's tab: logged in, offline, accepting the confirm dialogs the panel asks (and
    keeping their texts), with the helpers the steps share."""

    def __init__(self, browser, server, username):
        self.server, self.username = server, username
        self.page, self.outside = offline_page(browser, server, accept_downloads=True)
        self.dialogs, self.errors = [], []
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message),
                                               dialog.accept()))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        log_in(self.page, server, username)
        assert "您的角色" in self.page.content(), f"{username} could not log in"

    def go(self, path):
        self.page.goto(self.server + path)

    def follow(self, target):
        """Click what leads to another page (a selector or a locator); wait until it loaded."""
        with self.page.expect_navigation():
            (self.page.locator(target).first if isinstance(target, str) else target).click()

    def field(self, label) -> str:
        """The value a show page displays against a label."""
        return self.page.locator(f"table tr:has(th:text-is('{label}')) td").first.inner_text().strip()

    def flashes(self) -> str:
        # The page a move redirects to, once it has its messages: read at once, a late select2
        # answer during the redirect once left the text empty (a rehearsal's 会商派单).
        try:
            self.page.locator(".alert").first.wait_for(timeout=5000)
        except PlaywrightTimeout:
            pass
        return " ".join(self.page.locator(".alert").all_inner_texts())

    def move(self, label):
        """A workflow button without fields: a form that asks for confirmation first."""
        asked = len(self.dialogs)
        self.follow(f".gj-transitions button:text-is('{label}')")
        assert self.dialogs[asked:] == [f"确定执行“{label}”？"]

    def open_move(self, label):
        """A workflow move with fields: a link to its form."""
        self.follow(f".gj-transitions a:text-is('{label}')")

    def submit(self, label):
        self.follow(f"form button[type=submit]:text-is('{label}')")

    def pick(self, field_id, typed, choice):
        """A select2 box filled from the choices endpoint as the user types."""
        self.page.click(f"select#{field_id} + .select2-container .select2-selection")
        self.page.fill(".select2-container--open .select2-search__field", typed)
        self.page.click(f".select2-results__option:text-is('{choice}')")
        assert self.page.locator(f"select#{field_id} option:checked").inner_text().strip() == choice

    def shot(self, name):
        self.page.screenshot(path=str(ARTIFACTS / f"journey-{name}.png"), full_page=True)

    def close(self):
        assert self.outside == [], f"{self.username}'s pages asked for other hosts: {self.outside}"
        assert self.errors == [], f"script errors on {self.username}'s pages: {self.errors}"
        self.page.context.close()


def test_lists_and_the_need_loop_through_the_browser(browser, server, ctx, tmp_path):
    unit = ctx.execute(text("SELECT unit.name FROM ab_user JOIN unit ON unit.id = ab_user.unit_id "
                            "WHERE ab_user.username = 'danwei01'")).scalar_one()

    # (a) The liaison files a resource, submits it for review and imports two more from Excel.
    liaison = Visit(browser, server, "danwei01")
    liaison.go("/resource/list/")
    liaison.follow("a[href^='/resource/add']")
    # Its own unit is the one unit it may file for: filled in, shown as a value, no box.
    assert liaison.page.locator("#unit-text").inner_text() == unit
    assert liaison.page.locator("select#unit").count() == 0
    liaison.page.fill("input[name=year]", "2026")
    liaison.pick("category", "场地", "场地")
    liaison.page.fill("input[name=title]", RESOURCE)
    liaison.page.fill("textarea[name=content]", "周末向居民开放，藏书约800册")
    liaison.page.fill("input[name=quantity]", "1")
    liaison.page.fill("input[name=measure]", "处")
    liaison.page.fill("input[name=contact]", "李明")
    liaison.shot("01-danwei01-resource-form")
    liaison.follow("form:not(.gj-logout) button[type=submit]")  # not the menu's logout
    assert "记录已添加" in liaison.flashes()
    row = liaison.page.locator(f"table tr:has(td:text-is('{RESOURCE}'))")
    assert row.count() == 1
    liaison.follow(row.locator("a[href^='/resource/show/']"))
    assert liaison.field("状态") == "草稿"
    assert liaison.field("提供单位") == unit
    liaison.move("提交审核")
    assert "已提交审核" in liaison.flashes()
    assert liaison.field("状态") == "待审核"
    liaison.shot("02-danwei01-resource-submitted")

    liaison.go("/resource/list/")
    liaison.follow(".gj-data-buttons a:has-text('导入')")
    with liaison.page.expect_download() as download:
        liaison.page.click("a:has-text('下载导入模板')")
    template = tmp_path / "resource-template.xlsx"
    download.value.save_as(template)
    workbook = load_workbook(template)
    sheet = workbook["导入模板"]
    headers = [cell.value for cell in sheet[1]]
    sheet.delete_rows(2, sheet.max_row)  # the template's example row
    for title, quantity, measure in ((IMPORTED[0], 3, "人"), (IMPORTED[1], 10, "块")):
        values = {"提供单位": unit, "年度": 2026, "资源类别": "人员" if measure == "人" else "物资",
                  "资源名称": title, "资源内容": "每月第一个周六上门服务", "数量": quantity,
                  "单位": measure, "可用开始日期": "2026-01-01", "联系人": "王芳"}
        sheet.append([values.get(header.rstrip("*"), None) for header in headers])
    filled = tmp_path / "资源清单.xlsx"
    workbook.save(filled)

    liaison.page.set_input_files("input[name=file]", str(filled))
    assert liaison.page.is_checked("input[name=dry_run]")  # a preview comes first
    liaison.submit("上传并校验")
    assert "预览：将新增 2 条，更新 0 条，无变化 0 条（未写入）" in liaison.flashes()
    liaison.shot("03-danwei01-import-preview")
    liaison.page.set_input_files("input[name=file]", str(filled))
    liaison.page.uncheck("input[name=dry_run]")
    liaison.submit("上传并校验")
    assert "导入成功：新增 2 条，更新 0 条" in liaison.flashes()
    assert "已写入" in liaison.page.content()
    liaison.shot("04-danwei01-import-written")
    liaison.go("/resource/list/")
    for title in [RESOURCE, *IMPORTED]:
        assert liaison.page.locator(f"table tr:has(td:text-is('{title}'))").count() == 1, title
    imported = liaison.page.locator(f"table tr:has(td:text-is('{IMPORTED[0]}'))").inner_text()
    assert unit in imported and "草稿" in imported
    liaison.shot("05-danwei01-resource-list")

    # (b) The community admin accepts a waiting need and dispatches it to the liaison's unit.
    # A seeded need of the admin's own community, not one the other browser tests filed through
    # the public intake (which may be repeat reports or carry a photo and read differently).
    need_id = ctx.execute(text(
        "SELECT need.id FROM need JOIN ab_user ON ab_user.username = 'shequ01' "
        "WHERE need.community_id = ab_user.org_id AND need.status = '待受理' "
        "AND need.source <> '扫码点单' AND need.deleted_on IS NULL ORDER BY need.id")).first()[0]
    admin = Visit(browser, server, "shequ01")
    need_path = f"/need/show/{need_id}"
    admin.go(need_path)
    title = admin.field("需求标题")
    assert admin.field("状态") == "待受理"
    admin.move("平台接单")
    assert "已平台接单" in admin.flashes()
    assert admin.field("状态") == "已受理"
    admin.open_move("会商派单")
    admin.pick("assigned_unit", unit[:3], unit)
    admin.page.fill("textarea#note", "请于本周内联系提出人")
    admin.shot("06-shequ01-dispatch-form")
    admin.submit("会商派单")
    assert "已会商派单" in admin.flashes()
    assert admin.field("状态") == "已派单"
    assert admin.field("派单单位") == unit
    assert admin.field("办理时限")  # the default one for its urgency
    admin.shot("07-shequ01-need-dispatched")

    # (c) The liaison finds it in its list, takes it and closes it.
    liaison.go("/need/list/")
    liaison.follow(f"a[href='{need_path}']")
    assert liaison.field("需求标题") == title
    assert liaison.field("状态") == "已派单"
    # 接单 has fields (a 复杂 need's plan and its date, a photo): a form, filled as for any need
    liaison.open_move("接单")
    liaison.page.fill("textarea#plan", "上门查看后制定处理方案")
    liaison.page.fill("input#plan_due", (clock.today() + timedelta(days=5)).isoformat())
    liaison.submit("接单")
    assert "已接单" in liaison.flashes()
    assert liaison.field("状态") == "办理中"
    liaison.open_move("办结")
    liaison.page.fill("textarea#result", "已上门处理，提出人确认问题解决")
    liaison.submit("办结")
    assert "已办结" in liaison.flashes()
    assert liaison.field("状态") == "已办结"
    assert liaison.field("办理结果") == "已上门处理，提出人确认问题解决"
    liaison.shot("08-danwei01-need-completed")
    liaison.close()

    # (d) The admin pays the return visit and rates it.
    admin.go(need_path)
    admin.open_move("回访评单")
    admin.page.select_option("select#satisfaction", "5")
    admin.page.fill("textarea#comment", "居民很满意")
    admin.submit("回访评单")
    assert "已回访评单" in admin.flashes()
    assert admin.field("状态") == "已回访"
    assert admin.field("满意度") == "5"
    assert admin.field("回访意见") == "居民很满意"
    admin.shot("09-shequ01-need-reviewed")
    admin.close()

    # (e) The auditor exports the needs as CSV: a BOM for Excel, Chinese intact, our need in it.
    auditor = Visit(browser, server, "shenji")
    auditor.go("/need/list/")
    auditor.shot("10-shenji-need-list")
    with auditor.page.expect_download() as download:
        auditor.page.click(".gj-data-buttons a:has-text('导出 CSV')")
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    raw = exported.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert {"需求标题", "状态", "所在社区", "满意度"} <= set(rows[0])
    listed = ctx.execute(text("SELECT count(*) FROM need WHERE deleted_on IS NULL")).scalar_one()
    assert len(rows) == listed  # the auditor sees every need
    ours = [r for r in rows if r["需求标题"] == title and r["状态"] == "已回访"
            and r["派单单位"] == unit and r["满意度"] == "5"]
    assert len(ours) == 1, rows
    assert ours[0]["回访意见"] == "居民很满意"
    auditor.close()
