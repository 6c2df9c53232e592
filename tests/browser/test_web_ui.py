"""The web UI in headless Chromium (Debian's, driven by Playwright): what an operator does, with
screenshots under test-output/ui/. One stack and one uploaded large profile for the module."""
import gzip
import json
import re
import urllib.parse

import pytest

from proftask.pprof.encode import encode_profile
from proftask.pprof.v1 import profile_pb2
from tests.conformance.oracle import require_conformance
from tests.integration.harness import wait_until
from tests.integration.profiles import create_task, progress, upload, wait_finished

XSS_NAME = "<script>window.__xss=1</script>"
BAD_UTF8 = b"bad\xff\xfe<img src=x onerror=window.__xss=2>"
ROW = 18  # flamegraph.js's row height


@pytest.fixture(scope="module")
def shots(output_dir):
    d = output_dir / "ui"
    d.mkdir(exist_ok=True)
    return lambda page, name: page.screenshot(path=str(d / f"{name}.png"), full_page=True)


def heap_profile():
    return require_conformance() / "go/pyroscope-heap.pb.gz"


def until(page, expression: str, timeout: float = 30_000) -> None:
    """Waits until `expression` is true in the page (wait_for_function evaluates strings, which
    the page's CSP forbids)."""
    waited = 0
    while not page.evaluate(expression):
        assert waited < timeout, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)
        waited += 50


def held_request(page, held: list, what: str, timeout: float = 30_000):
    """The first request a route held back (page.route appending it to `held`); its handler runs
    while the page is waited on."""
    waited = 0
    while not held:
        assert waited < timeout, f"{what} was never asked for"
        page.wait_for_timeout(50)
        waited += 50
    return held[0]


def params(page) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


def test_operator_creates_watches_and_explores_a_task(stack, page, shots):
    page.goto(stack.base + "/ui/")  # as typed: the static files' folder, the task list too
    assert page.title().startswith("Tasks")
    page.goto(stack.base + "/ui/tasks")
    assert page.title().startswith("Tasks")
    # checked in the browser before sending: each message names the field, the value and the rule
    page.select_option("select[name=events]", "CPU")
    page.fill("input[name=duration]", "0")
    page.click("#create-button")
    page.wait_for_selector("#create-error li")
    problems = page.locator("#create-error li").all_inner_texts()
    assert any(p.startswith('serviceId ""') and "required" in p for p in problems), problems
    assert any(p.startswith("instances") and "at least one" in p for p in problems), problems
    assert any(p.startswith('duration "0"') and "from 1 to 15" in p for p in problems), problems
    page.select_option("select[name=events]", "MUTEX")
    page.fill("input[name=duration]", "2.5")
    page.fill("input[name=dumpPeriod]", "-1")
    page.click("#create-button")
    page.wait_for_selector("#create-error li[data-field=dumpPeriod]")
    assert 'dumpPeriod "-1": must be a whole number greater than 0 for MUTEX' in page.inner_text("#create-error")
    assert 'duration "2.5"' in page.inner_text("#create-error")
    assert page.get_attribute("input[name=dumpPeriod]", "aria-invalid") == "true"
    shots(page, "01-create-form-errors")
    # what only the server knows is still shown
    page.select_option("select[name=events]", "HEAP")
    page.fill("input[name=serviceId]", "x" * 600)
    page.fill("input[name=instances]", "pod-1")
    page.click("#create-button")
    page.wait_for_selector("#create-error:has-text('ARGUMENT_ERROR')")
    assert "512" in page.inner_text("#create-error")  # the server's limit, said by the server

    page.fill("input[name=serviceId]", "web-shop")
    page.fill("input[name=instances]", "pod-1, pod-2")
    page.click("#create-button")
    page.wait_for_url(re.compile(r"/ui/tasks/[^/?]+$"))
    task_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("tr[data-instance=pod-1] >> text=waiting for the agent")
    assert task_id[:8] in page.title()
    shots(page, "02-task-waiting")

    for pod in ("pod-1", "pod-2"):
        assert stack.get(f"/api/v1/pprof/agent/commands?service=web-shop&serviceInstance={pod}").json()["commands"]
    page.wait_for_selector("tr[data-instance=pod-2] >> text=notified", timeout=15_000)
    for pod in ("pod-1", "pod-2"):
        assert upload(stack, task_id, pod, heap_profile()).status == 202
    page.wait_for_selector("#progress-summary:has-text('2 finished, 0 failed, 0 pending')", timeout=30_000)
    page.wait_for_selector("#flame-header:has-text('inuse_space')", timeout=30_000)

    page.fill("#search", "runtime")
    page.wait_for_selector("#search-info:has-text('matching frames')")
    assert re.search(r"\d+ matching frames · [\d.]+ [KMG]?i?B · [\d.]+% of total", page.inner_text("#search-info"))
    assert params(page)["search"] == "runtime"
    page.fill("#search", "/run(/")
    page.wait_for_selector("#search-info.error:has-text('invalid regular expression')")
    page.fill("#search", "")

    canvas = page.locator("#flame")
    assert canvas.get_attribute("data-focus") == "root"
    canvas.click(position={"x": 5, "y": ROW + 9})  # the widest node of the first row
    until(page, "document.querySelector('#flame').dataset.focus !== 'root'")
    zoomed = canvas.get_attribute("data-focus")
    assert json.loads(params(page)["focus"]) == [zoomed]
    canvas.hover(position={"x": 5, "y": ROW + 9})
    tooltip = page.inner_text("#tooltip")
    assert zoomed in tooltip and "of parent" in tooltip and "in 2 of 2 instances" in tooltip
    shots(page, "03-zoomed-with-tooltip")
    page.go_back()  # back walks the zoom
    until(page, "document.querySelector('#flame').dataset.focus === 'root'")
    assert "focus" not in params(page)
    page.go_forward()
    until(page, f"document.querySelector('#flame').dataset.focus === {json.dumps(zoomed)}")
    page.click("#reset-zoom")
    assert canvas.get_attribute("data-focus") == "root"

    page.select_option("#sample-type", "alloc_space/bytes")
    page.wait_for_selector("#flame-header:has-text('alloc_space/bytes')")
    assert params(page)["sampleType"] == "alloc_space/bytes"
    page.click("#top-table th[data-sort=cum]")
    assert page.locator("#top-table th.sorted").get_attribute("data-sort") == "cum"

    with page.expect_download() as download:
        page.click("#exports a[data-format=pprof]")
    assert gzip.decompress(open(download.value.path(), "rb").read())  # a gzip'd pprof

    # the diff: a URL with both sides, the sample-type switch, search, reset; a 400 said clearly
    other = create_task(stack, ["pod-3"], events="HEAP", service="web-shop-b")
    upload(stack, other, "pod-3", require_conformance() / "go/pyroscope-heap_go_truncated_1.pb.gz")
    wait_finished(stack, other, ["pod-3"])
    page.goto(f"{stack.base}/ui/diff?base={task_id}&compare={other}")
    page.wait_for_selector("#diff-header:has-text('pod-3')", timeout=30_000)
    assert "pod-1, pod-2" in page.inner_text("#diff-header")
    page.goto(f"{stack.base}/ui/diff?base={task_id}&baseInstances=pod-1&compareInstances=pod-2"
              "&sampleType=alloc_space/bytes&search=runtime")
    page.wait_for_selector("#diff-header:has-text('alloc_space/bytes')", timeout=30_000)
    assert "(pod-1) → compare" in page.inner_text("#diff-header") and page.inner_text("#diff-header").count("(pod-2)") == 1
    page.wait_for_selector("#diff-search-info:has-text('matching frames')")
    assert page.locator("#diff-table tbody tr").count() > 0
    assert page.input_value("#diff-sample-type") == "alloc_space/bytes"
    page.locator("#diff-flame").click(position={"x": 5, "y": ROW + 9})
    until(page, "document.querySelector('#diff-flame').dataset.focus !== 'root'")
    assert "focus" in params(page) and params(page)["compareInstances"] == "pod-2"
    shots(page, "07-diff")
    page.click("#diff-reset")
    assert page.locator("#diff-flame").get_attribute("data-focus") == "root"

    # an old link still opens its view
    page.goto(f"{stack.base}/#/task/{task_id}")
    page.wait_for_url(re.compile(f"/ui/tasks/{task_id}$"))
    page.wait_for_selector("#flame-header:has-text('inuse_space')", timeout=30_000)
    page.click("header nav >> text=Diff")  # back and forward walk views too
    page.wait_for_selector("#diff-base")
    assert page.title().startswith("Diff")
    page.go_back()
    page.wait_for_selector("#flame-header:has-text('inuse_space')", timeout=30_000)
    assert page.url.endswith(f"/ui/tasks/{task_id}")


def test_diff_says_which_instance_is_unknown(stack, page):
    """Needs the server contract of issue 12: unknown instances are a 400 naming them."""
    task_id = create_task(stack, ["pod-1"], events="HEAP", service="diff-400")
    upload(stack, task_id, "pod-1", heap_profile())
    wait_finished(stack, task_id, ["pod-1"])
    page.goto(f"{stack.base}/ui/diff?base={task_id}&compareInstances=pod-9")
    page.wait_for_selector("#diff-error:has-text('ARGUMENT_ERROR')", timeout=30_000)
    assert "pod-9" in page.inner_text("#diff-error")


def test_a_choice_whose_sums_leave_64_bits_shows_its_error_and_nothing_of_the_last_choice(stack, page, shots):
    """Checking one instance more makes a merge the server refuses (422 VALUES_OUT_OF_RANGE): the
    error stands alone, not beside the graph, header, top table and export links of the two
    instances chosen before, whose numbers would be read as this choice's. A refused download
    says the server's reason, not its JSON."""
    big = encode_profile(["cpu/nanoseconds"], "cpu/nanoseconds", "cpu/nanoseconds", 10_000_000,
                         [([("main.main", 0, False), ("main.hot", 0, False)], [2**62])])
    small = encode_profile(["cpu/nanoseconds"], "cpu/nanoseconds", "cpu/nanoseconds", 10_000_000,
                           [([("main.main", 0, False), ("main.cool", 0, False)], [30_000_000])])
    task_id = create_task(stack, ["big-1", "big-2", "small-1"], events="CPU", duration=1, service="wraps")
    for instance, body in (("big-1", big), ("big-2", big), ("small-1", small)):
        assert upload(stack, task_id, instance, body).status == 202
    wait_finished(stack, task_id, ["big-1", "big-2", "small-1"])
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    drawn = "document.querySelector('#flame').__graph.tree !== null"

    page.goto(f"{stack.base}/ui/tasks/{task_id}")  # all three: refused
    page.wait_for_selector("#analysis-error:has-text('VALUES_OUT_OF_RANGE')", timeout=30_000)
    assert "sum to 9223372036884775808" in page.inner_text("#analysis-error")
    assert not page.evaluate(drawn) and page.inner_text("#flame-header") == ""
    assert page.locator("#exports a").count() == 0 and page.inner_text("#top-table") == ""

    # two fit; their top table is held back while the user checks the third again: the rows that
    # come late are of the last choice and must not be shown beside this one's error
    held = []
    def two_instances_top(url: str) -> bool:
        return "/top?" in url and "big-2" not in url
    page.route(two_instances_top, lambda route: held.append(route))
    page.uncheck("input[name=instance][value=big-2]")
    page.wait_for_selector("#flame-header:has-text('over 2 instance(s)')", timeout=30_000)
    assert page.inner_text("#analysis-error") == "" and page.evaluate(drawn)
    held_top = held_request(page, held, "the two instances' top table")
    # three again, typing a search while their answer is on its way (a search is no new choice)
    three = []
    def three_instances_analysis(url: str) -> bool:  # every instance: none named
        return "/analysis?" in url and "instanceIds" not in url
    page.route(three_instances_analysis, lambda route: three.append(route))
    page.check("input[name=instance][value=big-2]")
    held_three = held_request(page, three, "the three instances' analysis")
    page.fill("#search", "main")
    held_three.continue_()
    page.wait_for_selector("#analysis-error:has-text('VALUES_OUT_OF_RANGE')", timeout=30_000)  # the error alone
    with page.expect_event("requestfinished", lambda r: "/top?" in r.url):
        held_top.continue_()
    # nothing to await: the late rows must NOT show; 200 ms is the page's chance to show them
    page.evaluate("() => new Promise((settled) => setTimeout(settled, 200))")
    assert not page.evaluate(drawn), "the graph of the two instances is still drawn beside the error"
    assert page.inner_text("#flame-header") == "" and page.inner_text("#top-table") == ""
    assert page.locator("#exports a").count() == 0
    assert page.locator("#sample-type option").all_inner_texts() == ["cpu/nanoseconds"]
    page.unroute(two_instances_top)
    page.unroute(three_instances_analysis)

    shots(page, "14-values-out-of-range")
    page.uncheck("input[name=instance][value=big-2]")
    page.wait_for_selector("#top-table button.fn:has-text('main.hot')", timeout=30_000)  # the two again, exactly
    page.wait_for_selector("#exports a[data-format=folded]")
    assert page.inner_text("#analysis-error") == "" and "over 2 instance(s)" in page.inner_text("#flame-header")
    root = page.evaluate("document.querySelector('#flame').__graph.tree.total[0]")
    assert float(root) == float(2**62 + 30_000_000)  # a double, as JSON.parse reads it

    # two sample types of one name: the tree (the first) fits, the pprof export (both) does not
    twice = encode_profile(["cpu/nanoseconds", "cpu/nanoseconds"], "cpu/nanoseconds", "cpu/nanoseconds", 1,
                           [([("main.main", 0, False)], [1, 2**62])])
    twin_task = create_task(stack, ["twin-1", "twin-2"], events="CPU", duration=1, service="wraps-twice")
    for instance in ("twin-1", "twin-2"):
        assert upload(stack, twin_task, instance, twice).status == 202
    wait_finished(stack, twin_task, ["twin-1", "twin-2"])
    # a search typed while the top table is on its way is no new choice: the table and links come
    late = []
    page.route(lambda url: "/top?" in url, lambda route: late.append(route))
    page.goto(f"{stack.base}/ui/tasks/{twin_task}")
    held_late = held_request(page, late, "the top table")
    page.fill("#search", "main")
    held_late.continue_()
    page.wait_for_selector("#top-table button.fn:has-text('main.main')", timeout=30_000)
    page.wait_for_selector("#exports a[data-format=pprof]", timeout=30_000)
    page.click("#exports a[data-format=pprof]")
    page.wait_for_selector("#analysis-error:has-text('VALUES_OUT_OF_RANGE')", timeout=30_000)
    said = page.inner_text("#analysis-error")
    assert "sum to 9223372036854775808" in said and "{" not in said, said
    assert not errors, errors


def test_failed_instance_and_task_list(stack, page, shots):
    task_id = create_task(stack, ["ok-1", "bad-1", "late-1"], events="CPU", duration=2, service="half-failed")
    assert upload(stack, task_id, "ok-1", require_conformance() / "go/pprof-sample.cpu.pb.gz").status == 202
    r = stack.post("/api/v1/pprof/agent/errors", {"taskId": task_id, "serviceInstance": "bad-1", "message": "profiler crashed"})
    assert r.status == 202, r
    wait_until(lambda: progress(stack, task_id)["errorInstanceIds"] == ["bad-1"], timeout=30)
    page.goto(f"{stack.base}/ui/tasks/{task_id}")
    page.wait_for_selector("#progress-summary:has-text('1 finished, 1 failed, 1 pending')", timeout=30_000)
    widths = page.evaluate("""() => [...document.querySelectorAll('#progress-bar > div')]
        .map((d) => d.className + '=' + Math.round(parseFloat(d.style.width)))""")
    assert widths == ["seg-finished=33", "seg-failed=33", "seg-pending=33"]
    assert re.search(r"elapsed \d+:\d\d of 2:00 · \d+:\d\d remaining", page.inner_text("#task-timing"))
    assert "profiler crashed" in page.inner_text("tr[data-instance=bad-1]")
    shots(page, "10-failed-instance")

    assert stack.post("/api/v1/pprof/agent/errors", {"taskId": task_id, "serviceInstance": "late-1", "message": "x"}).status == 202
    # settled: the instances fold (the flame graph above the fold), their line still says why
    page.wait_for_selector("#progress-summary:has-text('1 finished, 2 failed, 0 pending')", timeout=30_000)
    assert page.locator("#instances").get_attribute("open") is None
    assert page.inner_text("#instances-summary") == "Instances and logs · 2 failed · bad-1: profiler crashed"
    waiting = create_task(stack, ["w-1"], events="HEAP", service="half-failed")
    page.goto(f"{stack.base}/ui/tasks?service=half-failed")
    page.wait_for_selector(f"tr[data-task='{task_id}'] .task-status:has-text('failed (1 finished, 2 failed of 3)')", timeout=30_000)
    assert page.inner_text(f"tr[data-task='{waiting}'] .task-status").startswith("waiting")
    upload(stack, waiting, "w-1", heap_profile())  # the list refreshes by itself
    page.wait_for_selector(f"tr[data-task='{waiting}'] .task-status:has-text('finished')", timeout=30_000)
    shots(page, "11-task-list")
    page.goto(f"{stack.base}/ui/tasks?service=half-failed&limit=1")  # paging: newest first
    page.wait_for_selector("#pager >> text=older")
    assert page.locator("#tasks tbody tr").evaluate_all("rs => rs.map(r => r.dataset.task)") == [waiting]
    page.click("#pager >> text=older")
    page.wait_for_selector("#pager >> text=newest")
    assert page.locator("#tasks tbody tr").evaluate_all("rs => rs.map(r => r.dataset.task)") == [task_id]


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
    task_id = create_task(stack, ["pod-1"], events="CPU", duration=1, service="hostile")  # samples/count
    assert upload(stack, task_id, "pod-1", hostile_profile()).status == 202
    wait_finished(stack, task_id, ["pod-1"])
    page.goto(f"{stack.base}/ui/tasks/{task_id}")
    page.wait_for_selector("#top-table td.name", timeout=30_000)
    names = page.locator("#top-table td.name").all_inner_texts()
    assert XSS_NAME in names
    assert any(n.startswith("bad\ufffd") and "<img" in n for n in names)  # replaced, shown verbatim
    assert page.evaluate("window.__xss") is None
    assert page.locator("#view script, #view img").count() == 0
    page.fill("#search", "<script>")
    page.wait_for_selector("#search-info:has-text('1 matching frames')")
    assert page.inner_text("#flame-header").startswith("samples/count: 10 samples")  # figures carry their unit
    shots(page, "08-hostile-names")


def test_each_task_and_each_set_of_finished_instances_shows_its_own_top_table(stack, page):
    """Two tasks of the same instance names, opened one after the other in one page: the second
    shows its own top table, not the first's (nor, after a token change, another tenant's); and a
    task whose third instance finishes while it is open shows the top of all three."""
    def top_names(task_id):
        return [r["name"] for r in stack.get(f"/api/v1/pprof/tasks/{task_id}/top?limit=3").json()["rows"]]

    def shown_names():
        return page.locator("#top-table td.name").evaluate_all("tds => tds.slice(0, 3).map((td) => td.textContent)")

    first = create_task(stack, ["i-1", "i-2"], events="HEAP", service="two-tops")
    second = create_task(stack, ["i-1", "i-2", "i-3"], events="HEAP", service="two-tops")
    for instance in ("i-1", "i-2"):  # the same instances finished: the same query of /top
        assert upload(stack, first, instance, heap_profile()).status == 202
        assert upload(stack, second, instance, require_conformance() / "go/parca-alloc_space_delta.pb.gz").status == 202
    wait_finished(stack, first, ["i-1", "i-2"])
    wait_finished(stack, second, ["i-1", "i-2"])
    assert top_names(first) != top_names(second)
    page.goto(f"{stack.base}/ui/tasks/{first}")
    page.wait_for_selector("#top-table td.name", timeout=30_000)
    until(page, f"JSON.stringify({json.dumps(top_names(first))}) === JSON.stringify([...document.querySelectorAll("
                "'#top-table td.name')].slice(0, 3).map((td) => td.textContent))")
    page.evaluate(f"() => {{ history.pushState(null, '', '/ui/tasks/{second}'); dispatchEvent(new PopStateEvent('popstate')); }}")
    page.wait_for_selector("#flame-header:has-text('over 2 instance(s)')", timeout=30_000)
    page.wait_for_selector("#top-table td.name", timeout=30_000)
    assert shown_names() == top_names(second)

    two = top_names(second)
    assert upload(stack, second, "i-3", heap_profile()).status == 202  # while the task is open
    page.wait_for_selector("#flame-header:has-text('over 3 instance(s)')", timeout=30_000)
    assert top_names(second) != two
    until(page, f"JSON.stringify({json.dumps(top_names(second))}) === JSON.stringify([...document.querySelectorAll("
                "'#top-table td.name')].slice(0, 3).map((td) => td.textContent))")


@pytest.fixture(scope="module")
def large_task(stack):
    task_id = create_task(stack, ["pod-1"], events="CPU", duration=1, service="large")
    upload(stack, task_id, "pod-1", require_conformance() / "large/pprof-large.cpu.pb.gz")
    wait_finished(stack, task_id, ["pod-1"], timeout=180)
    return task_id


def frame_box(page, canvas: str, name: str):
    """Where the canvas drew frame `name` (the layout the graph keeps for hit tests), or None."""
    return page.evaluate("""([sel, name]) => {
        const c = document.querySelector(sel);
        for (const [d, row] of (c.__graph.rows || []).entries())
          for (const b of row || []) if (b.kind === 'node' && c.__graph.tree.names[b.i] === name)
            return { x: Math.max(0, b.left) + 1, y: d * 18 + 9 };
        return null; }""", [canvas, name])


def test_large_profile_deep_link_merged_frames_and_focus(stack, browser, large_task, shots):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{stack.base}/ui/tasks/{large_task}")  # the deep link opens the task
    page.wait_for_selector("#flame-header:has-text('cpu')", timeout=60_000)
    header = page.inner_text("#flame-header")
    hidden = int(re.search(r"([\d,]+) smaller nodes", header)[1].replace(",", ""))
    assert hidden == 425_052 - 5_000  # 425,051 nodes and the root; the server kept 5,000
    assert page.locator("#flame").bounding_box()["y"] < 900 - 100  # the flame graph starts above the fold
    took = page.evaluate("""() => { const t = performance.now();
        document.querySelector('#search').value = 'runtime';
        document.querySelector('#search').dispatchEvent(new Event('input'));
        return performance.now() - t; }""")
    assert took < 1000, f"search over the 5,000-node graph took {took:.0f} ms"
    # the sum is of the nodes shown, and says so: the frames the size limit left out are not in it
    assert "in the 5,000 nodes shown (the size limit left 420,052 out; the top table counts them all)" in \
        page.inner_text("#search-info")
    page.fill("#search", "")

    # frames too narrow to draw are drawn merged, with a tooltip; so is the hatched "other"
    canvas = page.locator("#flame")
    assert int(canvas.get_attribute("data-merged")) > 0
    merged = page.evaluate("""() => { const g = document.querySelector('#flame').__graph;
        for (const [d, row] of g.rows.entries()) for (const b of row || [])
          if (b.kind === 'merged' && b.right - b.left >= 2) return { x: (Math.max(0, b.left) + b.right) / 2, y: d * 18 + 9 };
        }""")
    canvas.hover(position=merged)
    assert re.search(r"[\d,]+ frames, total [\d.]+ (ms|s|min)", page.inner_text("#tooltip"))
    other = page.evaluate("""() => { const g = document.querySelector('#flame').__graph;
        for (const [d, row] of g.rows.entries()) for (const b of row || [])
          if (b.kind === 'other' && b.right - b.left >= 2) return { x: (Math.max(0, b.left) + b.right) / 2, y: d * 18 + 9 };
        }""")
    canvas.hover(position=other)
    tip = page.inner_text("#tooltip")
    assert tip.startswith("other: ") and f"{hidden:,} nodes are left out" in tip
    shots(page, "09-large-profile")

    # a click on the merged frames under main.next zooms to main.next, asking the server for its
    # subtree; a second click zooms into the heaviest of them: a frame that was merged before is
    # drawn whole, with the part of its subtree the 5,000-node cut had left out
    box = frame_box(page, "#flame", "main.next")
    assert box, "main.next is drawn"
    merged_under = """() => { const g = document.querySelector('#flame').__graph;
        for (const [d, row] of g.rows.entries()) for (const b of row || [])
          if (b.kind === 'merged' && b.parentNode >= 0 && g.tree.names[b.parentNode] === 'main.next')
            return { x: (Math.max(0, b.left) + b.right) / 2, y: d * 18 + 9, heaviest: g.tree.names[b.heaviest],
                     path: JSON.stringify(pathOfNode(g.tree, b.heaviest)), size: g.tree.end[b.heaviest] - b.heaviest };
        }""".replace("pathOfNode(g.tree, b.heaviest)",
                     "(() => { const p = []; for (let a = b.heaviest; a > 0; a = g.tree.parent[a]) p.unshift(g.tree.names[a]); return p; })()")
    first = page.evaluate(merged_under)
    assert first, "frames under main.next are drawn merged"
    canvas.click(position={"x": first["x"], "y": first["y"]})
    until(page, "document.querySelector('#flame').dataset.focus === 'main.next'", timeout=60_000)
    assert canvas.get_attribute("data-source") == "focus", "needs the server's `focus` (issue 12's contract)"
    assert json.loads(params(page)["focus"])[-1] == "main.next"
    again = page.evaluate(merged_under)
    canvas.click(position={"x": again["x"], "y": again["y"]})
    until(page, f"document.querySelector('#flame').dataset.focus === {json.dumps(again['heaviest'])}", timeout=60_000)
    assert params(page)["focus"] == again["path"]
    size = page.evaluate("() => { const g = document.querySelector('#flame').__graph; return g.tree.end[g.focus] - g.focus; }")
    assert size > again["size"], (again, size)
    assert int(canvas.get_attribute("data-frames")) > 1
    shots(page, "12-focused-main-next")
    assert not errors, errors
    context.close()


def test_shared_url_keyboard_sandwich_and_dark_mode(stack, browser, large_task, shots):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="dark")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # a shared link reproduces the zoom and the search (a frame of the first row; zoom is local
    # when the server has no `focus` yet)
    page.goto(f"{stack.base}/ui/tasks/{large_task}")
    page.wait_for_selector("#flame-header:has-text('cpu')", timeout=60_000)
    first = page.evaluate("() => { const g = document.querySelector('#flame').__graph; return g.tree.names[g.tree.kids[0][0]]; }")
    url = f"{stack.base}/ui/tasks/{large_task}?" + urllib.parse.urlencode({"focus": json.dumps([first]), "search": "runtime"})
    page.goto(url)
    page.wait_for_selector("#search-info:has-text('matching frames')", timeout=60_000)
    assert page.locator("#flame").get_attribute("data-focus") == first
    assert page.input_value("#search") == "runtime"
    assert first in page.title()

    page.goto(f"{stack.base}/ui/tasks/{large_task}?" + urllib.parse.urlencode({"focus": json.dumps(["no.such.frame"])}))
    page.wait_for_selector("#analysis-error:has-text('no.such.frame')", timeout=60_000)  # said, not a blank graph
    assert page.locator("#flame").get_attribute("data-focus") == "root"

    # keyboard: the graph is focusable, arrows move, Enter zooms, Escape resets; Tab reaches the table
    page.goto(f"{stack.base}/ui/tasks/{large_task}")
    page.wait_for_selector("#flame-header:has-text('cpu')", timeout=60_000)
    page.focus("#flame")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    chosen = page.locator("#flame").get_attribute("data-selected")
    assert chosen and chosen != "root"
    assert chosen in page.inner_text("#tooltip")
    page.keyboard.press("Enter")
    until(page, f"document.querySelector('#flame').dataset.focus === {json.dumps(chosen)}", timeout=60_000)
    page.keyboard.press("Escape")
    until(page, "document.querySelector('#flame').dataset.focus === 'root'", timeout=60_000)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('#top-table') !== null")

    # a top-table row highlights the function everywhere and opens its sandwich
    name = "main.next"
    page.locator("#top-table button.fn", has_text=re.compile(r"^main\.next$")).click()
    page.wait_for_selector("#sandwich:not([hidden]) #sandwich-callers")
    assert params(page)["fn"] == name
    assert name in page.inner_text("#sandwich h3")
    callers = page.evaluate("() => document.querySelector('#sandwich-callers').__graph.tree.names")
    assert callers[:3] == ["main.next", "main.main", "runtime.main"]  # callers above, nearest first
    callees = page.evaluate("() => document.querySelector('#sandwich-callees').__graph.tree.names")
    assert callees[0] == "main.next" and len(callees) > 100
    assert page.evaluate("() => document.querySelector('#flame').__graph.marked.some((m) => m)")
    page.go_back()
    page.wait_for_selector("#sandwich", state="hidden")
    page.go_forward()
    page.wait_for_selector("#sandwich:not([hidden])")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 17, 21)"  # dark
    shots(page, "13-sandwich-dark")
    assert not errors, errors
    context.close()


def test_a_task_past_its_deadline_shows_failed_and_its_unsettled_instance_missed(spawn, page):
    """No grace: a HEAP task's deadline is its creation, and an instance that never ran it never
    will: the list says failed, as `proftask task list` does, and the task page says why."""
    expired = spawn("all", PROFTASK_TASK_GRACE_MINUTES="0")
    task_id = create_task(expired, ["gone-1"], events="HEAP", service="past-deadline")
    page.goto(f"{expired.base}/ui/tasks?service=past-deadline")
    page.wait_for_selector(f"tr[data-task='{task_id}'] .task-status:has-text('failed (0 finished, 1 failed of 1)')",
                           timeout=30_000)
    page.goto(f"{expired.base}/ui/tasks/{task_id}")
    page.wait_for_selector("#progress-summary:has-text('0 finished, 1 failed, 0 pending')", timeout=30_000)
    assert page.text_content("tr[data-instance=gone-1] .status-missed") == \
        "missed: not handed the task by its deadline, or its agent went away after"


def test_an_instance_whose_name_holds_a_comma_is_one_checkbox_and_can_be_chosen_alone(stack, page):
    comma = "pod-a,zone-1"
    task_id = create_task(stack, [comma, "pod-b"], events="HEAP", service="comma-names")
    for instance in (comma, "pod-b"):
        assert upload(stack, task_id, instance, heap_profile()).status == 202
    wait_finished(stack, task_id, [comma, "pod-b"])
    page.goto(f"{stack.base}/ui/tasks/{task_id}")
    page.wait_for_selector("#flame-header:has-text('over 2 instance(s)')", timeout=30_000)
    boxes = page.locator("input[name=instance]")
    assert boxes.evaluate_all("bs => bs.map((b) => b.value)") == [comma, "pod-b"]
    page.locator("input[name=instance][value='pod-b']").uncheck()
    page.wait_for_selector("#flame-header:has-text('over 1 instance(s)')", timeout=30_000)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["instanceIds"] == [comma]
    page.reload()  # the link says the same
    page.wait_for_selector("#flame-header:has-text('over 1 instance(s)')", timeout=30_000)
    assert boxes.evaluate_all("bs => bs.map((b) => b.checked)") == [True, False]
    assert not page.locator("#analysis-error").inner_text()
    # the last one unticked: no instance is chosen, and the page says so; it does not tick every
    # box again and show them all (a URL naming none means every instance)
    url = page.url
    page.locator("input[name=instance]").first.uncheck()
    page.wait_for_selector("#analysis-error:has-text('choose at least one instance')", timeout=10_000)
    assert boxes.evaluate_all("bs => bs.map((b) => b.checked)") == [False, False]
    assert page.url == url and not page.inner_text("#flame-header")
    page.locator("input[name=instance][value='pod-b']").check()
    page.wait_for_selector("#flame-header:has-text('over 1 instance(s)')", timeout=30_000)
    assert not page.locator("#analysis-error").inner_text()


def test_a_chosen_set_of_instances_stays_in_the_link_and_every_instance_is_asked_for_by_none(stack, page):
    """Three instances, one with a space in its name. Every instance: the analysis names none (a
    fleet's names outgrew the request line). Two of them: the URL names both, and so does a
    reload and a click on a function of the top table (the URL kept only the last of a repeated
    parameter: the graph became one instance's). The diff keeps the space inside a name."""
    names = ["pod a", "pod-b", "pod-c"]
    task_id = create_task(stack, names, events="HEAP", service="chosen-set")
    for instance in names:
        assert upload(stack, task_id, urllib.parse.quote(instance), heap_profile()).status == 202
    wait_finished(stack, task_id, names)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/analysis?" in r.url else None)
    page.goto(f"{stack.base}/ui/tasks/{task_id}")
    page.wait_for_selector("#flame-header:has-text('over 3 instance(s)')", timeout=30_000)
    assert asked and all("instanceIds" not in urllib.parse.parse_qs(urllib.parse.urlsplit(u).query) for u in asked)
    page.locator("input[name=instance][value='pod-c']").uncheck()
    page.wait_for_selector("#flame-header:has-text('over 2 instance(s)')", timeout=30_000)

    def chosen() -> list[str]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["instanceIds"]

    assert chosen() == ["pod a", "pod-b"]
    page.reload()
    page.wait_for_selector("#flame-header:has-text('over 2 instance(s)')", timeout=30_000)
    assert page.locator("input[name=instance]").evaluate_all("bs => bs.map((b) => b.checked)") == [True, True, False]
    page.locator("#top-table button.fn").first.click()
    until(page, "new URLSearchParams(location.search).has('fn')")
    page.wait_for_selector("#flame-header:has-text('over 2 instance(s)')", timeout=30_000)
    assert chosen() == ["pod a", "pod-b"]

    page.goto(f"{stack.base}/ui/diff?base={task_id}")
    page.fill("#diff-base-instances", " pod a , pod-b")
    page.fill("#diff-compare-instances", "pod-c")
    page.locator("#diff-compare-instances").press("Enter")
    page.wait_for_selector("#diff-header:has-text('(pod a, pod-b)')", timeout=30_000)
    assert params(page)["baseInstances"] == "pod a,pod-b"
