import pathlib
import subprocess

import pytest

from tests.integration.harness import KafkaBroker, Proftask, new_topic_prefix, stop_all

ROOT = pathlib.Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# A test's tier is the folder it lives in; `make <tier>` runs one, `make test` all of them.
TIERS = ("unit", "readmodel", "conformance", "integration", "browser", "chaos")


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = pathlib.Path(item.fspath).resolve().relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in one of the tier folders {TIERS}")
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def output_dir() -> pathlib.Path:
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    return out


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> KafkaBroker:
    b = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def spawn(broker, tmp_path_factory, output_dir):
    """spawn(role, prefix=None, data_dir=None) starts a proftask process; the module's are stopped
    when it ends, so idle stacks of earlier modules do not eat the 2 cores of later ones."""
    procs: list[Proftask] = []

    def _spawn(role: str = "all", prefix: str | None = None, data_dir: pathlib.Path | None = None,
               wait: bool = True, **env) -> Proftask:
        p = Proftask(role, broker, data_dir or tmp_path_factory.mktemp("proftask"),
                     prefix or new_topic_prefix(), output_dir, env)
        procs.append(p)
        return p.start(wait=wait)

    yield _spawn
    stop_all(procs)


@pytest.fixture(scope="module")
def stack(spawn) -> Proftask:
    """A standalone `proftask serve all` with its own topics and data, shared by a module."""
    return spawn("all")


@pytest.fixture(scope="session")
def swclient(tmp_path_factory) -> pathlib.Path:
    """tests/integration/swclient: SkyWalking's official Go client, used as skywalking-go does."""
    binary = tmp_path_factory.mktemp("swclient") / "swclient"
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=ROOT / "tests/integration/swclient",
                   check=True, timeout=600)
    return binary


CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by deploy/browser.sh (make test); never a downloaded one


@pytest.fixture(scope="module")
def browser():
    """Per module: Playwright's sync API keeps an event loop running in this thread while it is
    open, and tests of other modules call asyncio.run()."""
    from playwright.sync_api import sync_playwright

    if not pathlib.Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run deploy/browser.sh (make test does) to install Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser, output_dir):
    """A fresh page; its console errors fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors
