/**
 * Slipway's pytest plugin, written by run-tests to RUNNER_TEMP, put on PYTHONPATH and loaded with
 * `-p slipway_pytest`. Standard library and pytest hooks only:
 *  - each test's node id, file and line as JUnit properties (exact ids to select them again);
 *  - collect-only (SLIPWAY_COLLECT): the node ids pytest would run, as JSON;
 *  - select (SLIPWAY_SELECT): deselect every test not in a JSON list (a shard, or a retry);
 *  - a test database suffix (SLIPWAY_TEST_DB_SUFFIX), applied to Django's settings before
 *    pytest-django creates the test databases; pytest-django then adds xdist's _gw0, _gw1, …
 */
export const PYTEST_PLUGIN_MODULE = 'slipway_pytest';

export const PYTEST_PLUGIN_SOURCE = String.raw`
import json
import os


def _wanted():
    path = os.environ.get("SLIPWAY_SELECT")
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return set(json.load(f))


def pytest_collection_modifyitems(session, config, items):
    wanted = _wanted()
    if wanted is not None:
        keep = [item for item in items if item.nodeid in wanted]
        dropped = [item for item in items if item.nodeid not in wanted]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    for item in items:
        item.user_properties.append(("slipway.id", item.nodeid))
        try:
            path = str(item.path)
            line = item.location[1]
        except Exception:
            path, line = None, None
        if path:
            item.user_properties.append(("slipway.file", path))
        if line is not None:
            item.user_properties.append(("slipway.line", str(line + 1)))


def pytest_collection_finish(session):
    out = os.environ.get("SLIPWAY_COLLECT")
    if out and not os.environ.get("PYTEST_XDIST_WORKER"):
        with open(out, "w", encoding="utf-8") as f:
            json.dump([item.nodeid for item in session.items], f)


def pytest_sessionstart(session):
    suffix = os.environ.get("SLIPWAY_TEST_DB_SUFFIX")
    if not suffix or session.config.getoption("reuse_db", default=False):
        return
    try:
        from django.conf import settings

        databases = settings.DATABASES
    except Exception:
        return
    for db in databases.values():
        test = db.setdefault("TEST", {})
        if test.get("MIRROR"):
            continue
        name = test.get("NAME")
        if not name:
            if "sqlite" in db.get("ENGINE", "") or not db.get("NAME"):
                continue
            name = "test_" + str(db["NAME"])
        test["NAME"] = f"{name}_{suffix}"
`;
