"""SkyWalking's booster-ui, unmodified, served by `vite preview` with its GraphQL proxied to
proftask, in headless Chromium: an operator picks the service, opens its PProf tab, sees the task
list, creates a HEAP task, the demo's Go agent finishes it, the analysis draws a flame graph.
Screenshots: test-output/ui/booster-*.png."""
import base64
import os
import re
import subprocess
import urllib.request

import pytest

from tests.integration.demo import Demo, build_demo
from tests.integration.harness import free_port, wait_until

pytestmark = pytest.mark.booster
SERVICE, INSTANCE = "booster-demo", "booster-demo-1"
OTHER, OTHER_INSTANCE = "booster-other", "booster-other-1"


def sid(name: str) -> str:
    return base64.b64encode(name.encode()).decode() + ".1"


def graphql(stack, query: str, **variables) -> dict:
    r = stack.post("/graphql", {"query": query, "variables": variables})
    assert r.status == 200, r
    body = r.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def demos(stack, tmp_path_factory):
    binary = build_demo(tmp_path_factory.mktemp("demo-bin"))
    work = tmp_path_factory.mktemp("demos")
    started = [Demo(binary, stack, SERVICE, INSTANCE, work), Demo(binary, stack, OTHER, OTHER_INSTANCE, work)]
    wait_until(lambda: {SERVICE, OTHER} <= {s["name"] for s in graphql(
        stack, 'query { listServices(layer: "GENERAL") { name } }')["listServices"]}, timeout=30)
    yield started
    for d in started:
        d.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def ui(booster_dir, stack, output_dir):
    """booster-ui's own `vite preview`, its /graphql proxied (vite.config.ts) to this stack."""
    port = free_port()
    log = open(output_dir / f"booster-vite-{port}.log", "ab")
    proc = subprocess.Popen([str(booster_dir / "node_modules/.bin/vite"), "preview", "--host", "127.0.0.1",
                             "--port", str(port), "--strictPort"], cwd=booster_dir, stdout=log,
                            stderr=subprocess.STDOUT, env=dict(os.environ, VITE_SW_PROXY_TARGET=stack.base))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is not None or _answers(base + "/"), timeout=60)
        assert proc.poll() is None, f"vite preview exited: see {log.name}"
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def shots(output_dir):
    d = output_dir / "ui"
    d.mkdir(exist_ok=True)
    return lambda page, name: page.screenshot(path=str(d / f"booster-{name}.png"))


def pick(page, trigger, option: str) -> None:
    """Opens an element-plus select and clicks the visible option `option`."""
    trigger.click()
    page.locator(".el-select-dropdown__item:visible", has_text=re.compile(rf"^\s*{re.escape(option)}\s*$")).click()


def test_booster_ui_creates_and_analyses_a_pprof_task(booster_dir, stack, demos, ui, page, shots):
    graphql_errors: list[str] = []

    def on_response(response):
        if response.url.endswith("/graphql"):
            try:
                body = response.json()
            except Exception:  # noqa: BLE001 - not JSON: reported as such
                graphql_errors.append(f"{response.status} {response.text()[:200]}")
                return
            if response.status != 200 or body.get("errors"):
                graphql_errors.append(f"{response.request.post_data[:200]} -> {body.get('errors')}")

    page.on("response", on_response)
    # the GENERAL Service dashboard, opened on the other service: the operator picks theirs
    page.goto(f"{ui}/dashboard/GENERAL/Service/{sid(OTHER)}/General-Service")
    selector = page.locator(".dashboard-tool .selectors").first
    selector.wait_for()
    wait_until(lambda: OTHER in selector.inner_text(), timeout=20)
    pick(page, selector, SERVICE)
    wait_until(lambda: SERVICE in selector.inner_text() and OTHER not in selector.inner_text(), timeout=10)
    tabs = page.locator(".tabs input.tab-name")
    assert [tabs.nth(i).input_value() for i in range(tabs.count())] == ["Overview", "PProf"]
    tabs.nth(1).click()
    page.get_by_text("PProf Profiling").wait_for()
    page.locator(".profile-task-list .no-data:visible").wait_for()  # no task yet
    shots(page, "01-pprof-tab")

    page.get_by_role("button", name="New Task").click()
    form = page.locator(".pprof-task")
    pick(page, form.locator(".profile-input").first, INSTANCE)
    form.locator(".label", has_text="PProf Event").click()  # closes the instance list
    form.locator(".el-radio", has_text=re.compile(r"^\s*HEAP\s*$")).click()
    assert form.locator(".el-radio.is-checked").first.inner_text().strip() == "HEAP"
    shots(page, "02-new-task")
    form.get_by_role("button", name="Create Task").click()
    form.wait_for(state="detached")
    row = page.locator(".profile-task-list .profile-tr").first
    row.wait_for()
    assert "HEAP" in row.inner_text()
    task_id = row.locator(".ell span").first.inner_text().strip()
    listed = graphql(stack, "query($r: PprofTaskListRequest!) { queryPprofTaskList(request: $r) { tasks { id } } }",
                     r={"serviceId": sid(SERVICE)})
    assert [t["id"] for t in listed["queryPprofTaskList"]["tasks"]] == [task_id]

    # the demo's agent picks it up and finishes it; the UI reads progress when the task is clicked
    wait_until(lambda: graphql(stack, "query($t: String!) { p: queryPprofTaskProgress(taskId: $t) "
                                      "{ successInstanceIds } }", t=task_id)["p"]["successInstanceIds"],
               timeout=45)
    with page.expect_response(lambda r: "queryPprofTaskProgress" in (r.request.post_data or "")):
        row.click()
    # the UI picks the instances that finished for the analysis
    wait_until(lambda: INSTANCE in page.locator(".filter-selector").inner_text(), timeout=10)
    shots(page, "03-finished-task")
    with page.expect_response(lambda r: "queryPprofAnalyze" in (r.request.post_data or "")):
        page.get_by_role("button", name="Analyze").click()
    frames = page.locator(".stack svg g.frame")
    wait_until(lambda: frames.count() > 3, timeout=20)
    shots(page, "04-flame-graph")
    labels = page.locator(".stack").inner_text()
    assert "main.allocate" in labels, labels[:500]  # the demo's heap: what it allocates
    # what its flame graph builds on (aliases on root and leaf fields, as booster-ui sends them):
    # ids as numeric strings, the root's parentId "-1"
    tree = graphql(stack, """query getPprofAnalyze($request: PprofAnalyzationRequest!) {
        analysisResult: queryPprofAnalyze(request: $request) {
          tree { elements { id parentId symbol: codeSignature dumpCount: total self } } } }""",
                   request={"taskId": task_id, "instanceIds": [sid(SERVICE) + "_" + base64.b64encode(
                       INSTANCE.encode()).decode()]})["analysisResult"]["tree"]["elements"]
    assert tree[0]["parentId"] == "-1" and tree[0]["symbol"] == "root"
    assert all(e["id"].isdigit() and e["parentId"].lstrip("-").isdigit() for e in tree)
    assert not graphql_errors, graphql_errors
    assert not page.locator(".el-message--error").count(), page.locator(".el-message--error").all_inner_texts()
