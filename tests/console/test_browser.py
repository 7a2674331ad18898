"""The console in a real browser (headless Chromium, Selenium) against a live stack started
as ``make run`` starts it (gunicorn, a pipeline and an orquestrator worker, the agents of
node01..node04): an admin signs in, loads nothing by hand but the README's demo inventory and
gluster registration, launches gluster from the form, watches it reach running without a
reload, opens its nodes and events, destroys it; a user then finds neither the admin pages
nor the admin's instance. Each page's screenshot goes to var/screenshots/console/."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_TOKEN, EXAMPLES, base_env, node_pool, wait_until
from tests.console.browser import chromium_or_skip, screenshot, start_browser
from tests.integration.conftest import live_stack, load_demo_inventory  # noqa: F401
from tests.integration.test_readme_curl import REGISTER

pytestmark = pytest.mark.integration

#: a running instance stays in one place for this long at most before the test gives up
PATIENCE = 120


@pytest.fixture
def env(data_root):
    # gthread workers, as config/gunicorn.py runs the web process: each open event stream
    # holds a thread, not a whole worker
    return base_env(data_root / "var", GUNICORN_CMD_ARGS="--worker-class gthread --threads 32")


@pytest.fixture
def browser():
    chromium_or_skip()
    driver = start_browser()
    yield driver
    driver.quit()


def test_admin_launches_gluster_from_the_console_and_a_user_sees_none_of_it(
    live_stack,  # noqa: F811
    browser,
    tmp_path,
):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # live updates replace elements: one found just before it was replaced is looked up again
    STALE = (StaleElementReferenceException,)

    site = live_stack.api.split("/bigdata/")[0]
    load_demo_inventory(live_stack, node_pool(), tmp_path)
    for command in REGISTER:
        assert live_stack.curl(command, EXAMPLES / "gluster" / "3.7.11")[0] in (200, 201)
    wait_until(
        lambda: all(h["agent"] for h in live_stack.get("/hosts")[1]["hosts"]),
        "every agent's first report",
        timeout=90,
    )
    wait = WebDriverWait(browser, 20, ignored_exceptions=STALE)

    def text(css: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, css).text

    def sign_in(token: str) -> None:
        browser.get(f"{site}/console/")
        wait.until(ec.presence_of_element_located((By.ID, "token"))).send_keys(token)
        browser.find_element(By.CSS_SELECTOR, "#sign-in button").click()
        wait.until(ec.presence_of_element_located((By.ID, "who")))

    # sign in as the admin
    browser.get(f"{site}/console/instances")
    assert "/console/login" in browser.current_url
    screenshot(browser, "sign-in")
    sign_in(ADMIN_TOKEN)
    assert text("#who") == "admin (admin)"

    # the admin pages
    browser.find_element(By.LINK_TEXT, "Hosts").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-host=node04]")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#hosts meter")) == 12
    assert len(browser.find_elements(By.CSS_SELECTOR, "#hosts time.heartbeat")) == 4
    screenshot(browser, "hosts")
    browser.find_element(By.LINK_TEXT, "Networks").click()
    assert "demo" in text("#networks")
    screenshot(browser, "networks")
    browser.find_element(By.LINK_TEXT, "Users").click()
    browser.find_element(By.ID, "user-name").send_keys("bob")
    browser.find_element(By.CSS_SELECTOR, "#new-user button").click()
    bob_token = wait.until(ec.presence_of_element_located((By.ID, "new-token"))).text
    screenshot(browser, "users")

    # the catalog, the form, a plan, the launch
    browser.find_element(By.LINK_TEXT, "Catalog").click()
    assert "GlusterFS parallel filesystem cluster" in text("[data-service='gluster/3.7.11']")
    screenshot(browser, "catalog")
    browser.find_element(By.CSS_SELECTOR, "[data-service='gluster/3.7.11'] a.launch").click()
    size = wait.until(ec.presence_of_element_located((By.ID, "opt-size")))
    size.clear()
    size.send_keys("2")
    browser.find_element(By.CSS_SELECTOR, "details summary").click()  # More options
    Select(browser.find_element(By.ID, "opt-disk-type")).select_by_value("hdd")
    browser.find_element(By.ID, "plan").click()
    plan = wait.until(ec.presence_of_element_located((By.ID, "plan-result")))
    assert "It fits now" in plan.text
    screenshot(browser, "launch-plan")
    browser.find_element(By.ID, "launch").click()
    wait.until(ec.presence_of_element_located((By.ID, "instance-status")))
    instance_url = browser.current_url
    # a marker the page would lose on a reload: the page must get to running by itself
    browser.execute_script("window.sameLoad = true")
    WebDriverWait(browser, PATIENCE, ignored_exceptions=STALE).until(
        lambda d: d.find_element(By.ID, "instance-status").text in ("running", "failed")
    )
    assert text("#instance-status") == "running", text("#instance-header")
    assert browser.execute_script("return window.sameLoad") is True
    hosts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#nodes td.host")]
    assert len(hosts) == 2 and all(h.startswith("node0") for h in hosts), hosts
    events = text("#events")
    for status in ("pending", "prepared", "submitted", "queued", "scheduled", "running"):
        assert status in events, events
    WebDriverWait(browser, 20, ignored_exceptions=STALE).until(
        lambda d: "start" in d.find_element(By.ID, "logs").text
    )
    screenshot(browser, "instance")

    # the list shows it running; on a narrow screen nothing overflows sideways
    browser.find_element(By.LINK_TEXT, "Instances").click()
    assert "running" in text("#instances tbody")
    screenshot(browser, "instances")
    browser.set_window_size(390, 844)
    browser.get(instance_url)
    width = browser.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width
    screenshot(browser, "instance-narrow")
    browser.set_window_size(1280, 900)

    # the list open in a second tab, destroy it from its page (confirmed) in the first: the
    # list follows it to destroyed by itself
    page_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(f"{site}/console/instances")
    row = f"#instances tr[data-instance='{instance_url.rsplit('/', 1)[1]}'] [data-status]"
    assert text(row) == "running"
    browser.execute_script("window.sameLoad = true")
    list_tab = browser.current_window_handle
    browser.switch_to.window(page_tab)
    browser.find_element(By.ID, "destroy").click()
    WebDriverWait(browser, 5).until(ec.alert_is_present()).accept()
    wait.until(lambda d: d.find_element(By.ID, "instance-status").text != "running")
    browser.switch_to.window(list_tab)
    WebDriverWait(browser, PATIENCE, ignored_exceptions=STALE).until(
        lambda d: text(row) == "destroyed"
    )
    assert browser.execute_script("return window.sameLoad") is True
    browser.close()
    browser.switch_to.window(page_tab)
    WebDriverWait(browser, PATIENCE, ignored_exceptions=STALE).until(
        lambda d: text("#instance-status") == "destroyed"
    )
    assert "destroyed" in text("#events")
    assert not browser.find_elements(By.ID, "destroy")
    screenshot(browser, "instance-destroyed")
    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    wait.until(ec.presence_of_element_located((By.ID, "token")))

    # a user: no admin page, no link to one, not the admin's instance
    sign_in(bob_token)
    assert text("#who") == "bob (user)"
    assert not browser.find_elements(By.LINK_TEXT, "Hosts")
    assert not browser.find_elements(By.CSS_SELECTOR, "#instances tbody tr")
    screenshot(browser, "user-instances")
    for url in (f"{site}/console/admin/hosts", f"{site}/console/admin/users", instance_url):
        browser.get(url)
        assert text("h1") == "404", url
