/**
 * Slipway's Django test runner, written by run-tests to RUNNER_TEMP and put on PYTHONPATH, then
 * chosen with `manage.py test --testrunner slipway_django_runner.SlipwayRunner`. It subclasses
 * the project's own TEST_RUNNER (when that is a DiscoverRunner) so nothing the project set up is
 * lost, and adds, with the standard library only (no extra dependency in the user's venv):
 *  - JUnit XML of every test (SLIPWAY_JUNIT), durations from unittest's addDuration (which
 *    Django's parallel workers forward on Python ≥ 3.12), file and line of each test;
 *  - collect-only (SLIPWAY_COLLECT): the ids Django would run, as JSON, without a database;
 *  - select (SLIPWAY_SELECT): run only the ids in a JSON file (a shard, or failed tests to retry);
 *  - a test database suffix (SLIPWAY_TEST_DB_SUFFIX) so concurrent jobs on one server never share
 *    a test database name; Django's --parallel clones then add their own _1, _2, … after it.
 */
export const DJANGO_RUNNER_MODULE = 'slipway_django_runner';

export const DJANGO_RUNNER_SOURCE = String.raw`
import inspect
import json
import os
import time
import unittest
import xml.etree.ElementTree as ET

from django.conf import settings
from django.test.runner import DiscoverRunner, ParallelTestSuite, RemoteTestResult, RemoteTestRunner
from django.test.utils import get_runner, iter_test_cases


def _base_runner():
    try:
        cls = get_runner(settings)
    except Exception:
        return DiscoverRunner
    if isinstance(cls, type) and issubclass(cls, DiscoverRunner) and cls.__module__ != __name__:
        return cls
    return DiscoverRunner


def _location(test):
    try:
        cls = type(test)
        method = getattr(cls, test._testMethodName)
        method = inspect.unwrap(method)
        return inspect.getsourcefile(method), inspect.getsourcelines(method)[1]
    except Exception:
        try:
            return inspect.getsourcefile(type(test)), None
        except Exception:
            return None, None


class _Recorder:
    """Mixed into the run's result class; every event, also those replayed from parallel workers."""

    def startTest(self, test):
        self._slipway_started = getattr(self, "_slipway_started", {})
        self._slipway_started[test.id()] = time.perf_counter()
        super().startTest(test)

    def _slipway(self, test):
        records = self.__dict__.setdefault("_slipway_records", {})
        key = test.id()
        if key not in records:
            file, line = _location(test)
            cls = type(test)
            classname = f"{cls.__module__}.{cls.__qualname__}"
            name = getattr(test, "_testMethodName", None) or str(test)
            if isinstance(test, unittest.suite._ErrorHolder) or not getattr(test, "_testMethodName", None):
                classname, name = "", key
            records[key] = {"id": key, "classname": classname, "name": name, "file": file, "line": line,
                            "time": None, "outcome": "passed", "message": "", "details": ""}
        return records[key]

    def stopTest(self, test):
        super().stopTest(test)
        record = self._slipway(test)
        started = getattr(self, "_slipway_started", {}).pop(test.id(), None)
        if record["time"] is None and started is not None:
            record["time"] = time.perf_counter() - started

    def addDuration(self, test, elapsed):
        self._slipway(test)["time"] = elapsed
        parent = getattr(super(), "addDuration", None)
        if parent:
            parent(test, elapsed)

    def _fail(self, test, outcome, err):
        record = self._slipway(test)
        if record["outcome"] in ("failed", "error") and outcome == "failed":
            return
        record["outcome"] = outcome
        try:
            record["message"] = "".join(__import__("traceback").format_exception_only(err[0], err[1])).strip()
            record["details"] = self._exc_info_to_string(err, test)
        except Exception as exc:
            record["message"] = record["details"] = repr(exc)

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, "error", err)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, "failed", err)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._fail(test, "error" if not issubclass(err[0], test.failureException) else "failed", err)
            self._slipway(test)["message"] = f"{subtest._subDescription()}: {self._slipway(test)['message']}"

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        record = self._slipway(test)
        record["outcome"], record["message"] = "skipped", str(reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._slipway(test)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        record = self._slipway(test)
        record["outcome"], record["message"] = "failed", "unexpected success"

    def addSuccess(self, test):
        super().addSuccess(test)
        self._slipway(test)


def _write_junit(path, records):
    tags = {"failed": "failure", "error": "error", "skipped": "skipped"}
    suite = ET.Element("testsuite", name="django", tests=str(len(records)))
    for outcome, key in (("failed", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(key, str(sum(1 for r in records if r["outcome"] == outcome)))
    suite.set("time", "%.3f" % sum(r["time"] or 0 for r in records))
    for r in records:
        case = ET.SubElement(suite, "testcase", classname=r["classname"], name=r["name"], time="%.3f" % (r["time"] or 0))
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="slipway.id", value=r["id"])
        if r["file"]:
            case.set("file", r["file"])
            ET.SubElement(props, "property", name="slipway.file", value=r["file"])
        if r["line"]:
            case.set("line", str(r["line"]))
            ET.SubElement(props, "property", name="slipway.line", value=str(r["line"]))
        tag = tags.get(r["outcome"])
        if tag:
            node = ET.SubElement(case, tag, message=r["message"][:1000])
            node.text = r["details"]
    root = ET.Element("testsuites")
    root.append(suite)
    tmp = path + ".tmp"
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


class _RemoteResult(RemoteTestResult):
    # Python 3.12 reports a skipped test without startTest; Django's workers then send the skip
    # under the previous test's index, so the parent would mark the wrong test skipped and lose
    # the skipped one. Starting (and stopping) the test around such a skip keeps them in step.
    def startTest(self, test):
        self._slipway_current = test.id()
        super().startTest(test)

    def addSkip(self, test, reason):
        if getattr(self, "_slipway_current", None) == test.id():
            return super().addSkip(test, reason)
        self.startTest(test)
        super().addSkip(test, reason)
        self.stopTest(test)


class _RemoteRunner(RemoteTestRunner):
    resultclass = _RemoteResult


class _ParallelSuite(ParallelTestSuite):
    runner_class = _RemoteRunner


_Base = _base_runner()


class SlipwayRunner(_Base):
    if _Base.parallel_test_suite is ParallelTestSuite:
        parallel_test_suite = _ParallelSuite

    def get_resultclass(self):
        base = super().get_resultclass() or unittest.TextTestResult
        return type("SlipwayResult", (_Recorder, base), {})

    def load_tests_for_label(self, label, discover_kwargs):
        tests = super().load_tests_for_label(label, discover_kwargs)
        selected = os.environ.get("SLIPWAY_SELECT")
        if not selected or tests is None:
            return tests
        with open(selected, encoding="utf-8") as f:
            wanted = set(json.load(f))
        return self.test_suite([t for t in iter_test_cases(tests) if t.id() in wanted])

    def setup_databases(self, **kwargs):
        suffix = os.environ.get("SLIPWAY_TEST_DB_SUFFIX")
        if suffix and not self.keepdb:
            for db in settings.DATABASES.values():
                test = db.setdefault("TEST", {})
                if test.get("MIRROR"):
                    continue
                name = test.get("NAME")
                if not name:
                    if "sqlite" in db.get("ENGINE", "") or not db.get("NAME"):
                        continue
                    name = "test_" + str(db["NAME"])
                test["NAME"] = f"{name}_{suffix}"
                print(f"Test database for {db['ENGINE']}: {test['NAME']}")
        return super().setup_databases(**kwargs)

    def run_suite(self, suite, **kwargs):
        result = super().run_suite(suite, **kwargs)
        path = os.environ.get("SLIPWAY_JUNIT")
        if path:
            records = list(getattr(result, "_slipway_records", {}).values())
            _write_junit(path, records)
        return result

    def run_tests(self, test_labels, **kwargs):
        out = os.environ.get("SLIPWAY_COLLECT")
        if not out:
            return super().run_tests(test_labels, **kwargs)
        self.parallel = 1
        self.setup_test_environment()
        try:
            ids = [t.id() for t in iter_test_cases(self.build_suite(test_labels))]
        finally:
            self.teardown_test_environment()
        with open(out, "w", encoding="utf-8") as f:
            json.dump(ids, f)
        return 0
`;
