"""booster-ui (SkyWalking's web UI) against proftask: needs a booster-ui built beforehand (see
README, "Coming from SkyWalking"), at $BOOSTER_UI_DIR or build/booster-ui.

The `booster` tests run when that build exists. Without it they are deselected (said in the
summary) unless `-m booster` asks for them: then they fail, saying what is missing."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
BOOSTER_UI_DIR = pathlib.Path(os.environ.get("BOOSTER_UI_DIR", ROOT / "build" / "booster-ui"))
NEEDED = ("dist/index.html", "node_modules/.bin/vite", "vite.config.ts")


def missing() -> list[str]:
    return [n for n in NEEDED if not (BOOSTER_UI_DIR / n).exists()]


def pytest_configure(config):
    config.addinivalue_line("markers", "booster: SkyWalking's booster-ui in Chromium against proftask "
                                       "(needs a built booster-ui, see tests/browser/booster/conftest.py)")


def pytest_collection_modifyitems(config, items):
    if not missing() or "booster" in (config.getoption("markexpr") or ""):
        return
    dropped = [i for i in items if i.get_closest_marker("booster")]
    if dropped:
        items[:] = [i for i in items if not i.get_closest_marker("booster")]
        config.hook.pytest_deselected(items=dropped)
        config._booster_deselected = len(dropped)


def pytest_terminal_summary(terminalreporter, config):
    n = getattr(config, "_booster_deselected", 0)
    if n:
        terminalreporter.write_line(
            f"booster: {n} test(s) deselected: no built booster-ui at {BOOSTER_UI_DIR} "
            f"(missing {', '.join(missing())}); run them with -m booster once it is built")


def _require_build() -> None:
    gone = missing()
    if gone:
        pytest.fail(f"the booster tests need a built booster-ui at {BOOSTER_UI_DIR} (set BOOSTER_UI_DIR), "
                    f"missing: {', '.join(gone)}; see README, 'Coming from SkyWalking'", pytrace=False)


def pytest_runtest_setup(item):
    """Before any fixture (the session's Kafka broker first): no build, no minute spent."""
    if item.get_closest_marker("booster"):
        _require_build()


@pytest.fixture(scope="module")
def booster_dir() -> pathlib.Path:
    _require_build()
    return BOOSTER_UI_DIR
