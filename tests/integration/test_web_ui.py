"""The web UI in headless Chromium (Debian's, driven by Playwright): what an operator does, with
screenshots under test-output/ui/."""
import gzip
import re

import pytest

from proftask.pprof.encode import encode_profile
from proftask.pprof.v1 import profile_pb2
from tests.conformance.oracle import require_conformance
from tests.integration.profiles import create_task, upload, wait_finished

pytestmark = pytest.mark.integration
XSS_NAME = "<script>window.__xss=1</script>"
BAD_UTF8 = b"bad\xff\xfe<img src=x onerror=window.__xss=2>"


@pytest.fixture(scope="module")
def shots(output_dir):
    d = output_dir / "ui"
    d.mkdir(exist_ok=True)
    return lambda page, name: page.screenshot(path=str(d / f"{name}.png"), full_page=True)


def heap_profile():
    return require_conformance() / "go/pyroscope-heap.pb.gz"


def test_operator_creates_watches_and_explores_a_task(stack, page, shots):
    page.goto(stack.base + "/#/tasks")
    page.fill("input[name=serviceId]", "web-shop")
    page.select_option("select[name=events]", "HEAP")
    page.click("#create-button")  # no instances: the server's own validation message
    page.wait_for_selector("#create-error:has-text('ARGUMENT_ERROR')")
    assert "instance" in page.inner_text("#create-error").lower()
    shots(page, "01-create-validation-error")

    page.fill("input[name=instances]", "pod-1, pod-2")
    page.click("#create-button")
    page.wait_for_url(re.compile(r"#/task/"))
    task_id = page.url.split("#/task/")[1]
    page.wait_for_selector("tr[data-instance=pod-1] >> text=waiting for the agent")
    shots(page, "02-task-waiting")

    # the agents: pod-1 and pod-2 poll, then upload; the page refreshes by itself
    for pod in ("pod-1", "pod-2"):
        assert stack.get(f"/api/v1/pprof/agent/commands?service=web-shop&serviceInstance={pod}").json()["commands"]
    page.wait_for_selector("tr[data-instance=pod-2] >> text=notified", timeout=15_000)
    for pod in ("pod-1", "pod-2"):
        assert upload(stack, task_id, pod, heap_profile()).status == 202
    page.wait_for_selector("#progress-summary:has-text('2 finished, 0 failed, 0 pending')", timeout=30_000)
    page.wait_for_selector("#flame-header:has-text('inuse_space')", timeout=30_000)
    shots(page, "03-finished-flame-graph")

    page.fill("#search", "runtime")
    page.wait_for_selector("#search-info:has-text('matching frames')")
    assert re.search(r"\d+ matching frames · .* · [\d.]+% of total", page.inner_text("#search-info"))
    shots(page, "04-search")
    page.fill("#search", "")

    canvas = page.locator("#flame")
    assert canvas.get_attribute("data-focus") == "root"
    canvas.click(position={"x": 5, "y": 18 + 9})  # the widest node of the first row
    zoomed = canvas.get_attribute("data-focus")
    assert zoomed and zoomed != "root"
    canvas.hover(position={"x": 5, "y": 18 + 9})
    tooltip = page.inner_text("#tooltip")
    assert zoomed in tooltip and "of parent" in tooltip and "in 2 of 2 instances" in tooltip
    shots(page, "05-zoomed-with-tooltip")
    page.click("#reset-zoom")
    assert canvas.get_attribute("data-focus") == "root"

    page.select_option("#sample-type", "alloc_space/bytes")
    page.wait_for_selector("#flame-header:has-text('alloc_space/bytes')")
    page.click("#top-table th[data-sort=total]")
    assert page.locator("#top-table th.sorted").get_attribute("data-sort") == "total"
    shots(page, "06-alloc-space-by-total")

    with page.expect_download() as download:
        page.click("#exports a[data-format=pprof]")
    assert gzip.decompress(open(download.value.path(), "rb").read())  # a gzip'd pprof

    # a second task of the same service, compared with the first in the diff view
    other = create_task(stack, ["pod-3"], events="HEAP", service="web-shop-b")
    upload(stack, other, "pod-3", require_conformance() / "go/pyroscope-heap_go_truncated_1.pb.gz")
    wait_finished(stack, other, ["pod-3"])
    page.goto(f"{stack.base}/#/diff?base={task_id}&compare={other}")
    page.wait_for_selector("#diff-header:has-text('compare')", timeout=30_000)
    assert "pod-1, pod-2" in page.inner_text("#diff-header") and "pod-3" in page.inner_text("#diff-header")
    assert page.locator("#diff-table tbody tr").count() > 0
    shots(page, "07-diff")


def hostile_profile() -> bytes:
    """Function names with markup and invalid UTF-8. The profiler 'demangled' them (system_name
    differs), so pprof's name rules keep them as written."""
    raw = gzip.decompress(encode_profile(["samples/count"], "samples/count", "", 0, [
        ([("main.main", 1, False), (XSS_NAME, 2, False)], [7]),
        ([("main.main", 1, False), ("PLACEHOLDER_NAME", 3, False)], [3])]))
    p = profile_pb2.Profile()
    p.ParseFromString(raw)
    table = list(p.string_table)
    table[table.index(b"PLACEHOLDER_NAME")] = BAD_UTF8
    del p.string_table[:]
    p.string_table.extend(table)
    for f in p.function:
        f.system_name = 0
    return gzip.compress(p.SerializeToString())


def test_hostile_names_render_as_text(stack, page, shots):
    task_id = create_task(stack, ["pod-1"], events="HEAP", service="hostile")
    assert upload(stack, task_id, "pod-1", hostile_profile()).status == 202
    wait_finished(stack, task_id, ["pod-1"])
    page.goto(f"{stack.base}/#/task/{task_id}")
    page.wait_for_selector("#top-table td.name", timeout=30_000)
    names = page.locator("#top-table td.name").all_inner_texts()
    assert XSS_NAME in names
    assert any(n.startswith("bad\ufffd") and "<img" in n for n in names)  # replaced, shown verbatim
    assert page.evaluate("window.__xss") is None
    assert page.locator("#view script, #view img").count() == 0
    page.fill("#search", "<script>")
    page.wait_for_selector("#search-info:has-text('1 matching frames')")
    shots(page, "08-hostile-names")


def test_large_profile_stays_responsive(stack, page, shots):
    task_id = create_task(stack, ["pod-1"], events="CPU", duration=1, service="large")
    upload(stack, task_id, "pod-1", require_conformance() / "large/pprof-large.cpu.pb.gz")
    wait_finished(stack, task_id, ["pod-1"], timeout=180)
    page.goto(f"{stack.base}/#/task/{task_id}")
    page.wait_for_selector("#flame-header:has-text('cpu')", timeout=60_000)
    header = page.inner_text("#flame-header")
    hidden = int(re.search(r"([\d,]+) smaller nodes", header)[1].replace(",", ""))
    assert hidden == 425_052 - 5_000  # 425,051 nodes and the root; the server kept 5,000
    took = page.evaluate("""() => { const t = performance.now();
        document.querySelector('#search').value = 'runtime';
        document.querySelector('#search').dispatchEvent(new Event('input'));
        return performance.now() - t; }""")
    assert took < 1000, f"search over the 5,000-node graph took {took:.0f} ms"
    shots(page, "09-large-profile")
