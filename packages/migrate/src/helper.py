"""Slipway migrate helper: asks Django's own migration machinery (loader, executor, schema
editor) for the plan, the applied state, lint findings; holds the migration lock; applies.

Run as `python -c <this file> '<json request>'` in the project's folder with
DJANGO_SETTINGS_MODULE set. The answer is the last stdout line, prefixed SLIPWAY_JSON:.
`{"cmd": "session"}` keeps one process (one Django start-up) for a whole run: requests come
one JSON object per stdin line, each answered by one SLIPWAY_JSON line.
"""
import hashlib
import json
import os
import re
import sys
import time
import traceback


class Refusal(Exception):
    """A situation to report in one line (kind, message), not a crash."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def emit(obj):
    sys.stdout.write("\nSLIPWAY_JSON:" + json.dumps(obj) + "\n")
    sys.stdout.flush()


def first_line(exc):
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def connection_for(alias, dedicated=False):
    from django.db import connections

    if alias not in connections.settings:
        have = ", ".join(sorted(connections.settings)) or "none"
        raise Refusal("alias", "database alias %r is not in settings.DATABASES (have: %s)" % (alias, have))
    conn = connections.create_connection(alias) if dedicated else connections[alias]
    try:
        conn.ensure_connection()
    except Exception as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise Refusal("connect", lines[0] if lines else first_line(exc))
    return conn


def graph_order(loader):
    order, seen = [], set()
    for leaf in sorted(loader.graph.leaf_nodes()):
        for node in loader.graph.forwards_plan(leaf):
            if node not in seen:
                seen.add(node)
                order.append(node)
    return order


def applied_state(loader):
    """Latest applied migration per migrated app, in graph order; None when none is applied."""
    applied = set(loader.applied_migrations)
    state = {app: None for app in sorted(loader.migrated_apps)}
    for node in graph_order(loader):
        if node in applied and node[0] in state:
            state[node[0]] = node[1]
    return state


def executor_for(conn):
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(conn)
    conflicts = executor.loader.detect_conflicts()
    if conflicts:
        names = "; ".join("%s: %s" % (app, ", ".join(sorted(n))) for app, n in sorted(conflicts.items()))
        raise Refusal("conflict", "conflicting migrations (several leaves) in %s: run makemigrations --merge" % names)
    return executor


# ---------------------------------------------------------------------------- lint

SEVERITY = {
    "irreversible-python": "error",
    "irreversible-sql": "error",
    "drop-column": "error",
    "drop-table": "error",
    "rename-column": "error",
    "rename-table": "error",
    "not-null-without-db-default": "error",
    "column-type-change": "warning",
    "index-not-concurrent": "warning",
    "unique-not-concurrent": "warning",
    "foreign-key-validates": "warning",
}

CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)", re.I)
ADD_UNIQUE = re.compile(r"\bADD\s+CONSTRAINT\s+\S+\s+UNIQUE\b", re.I)
ADD_FK = re.compile(r"\bFOREIGN\s+KEY\b|\bREFERENCES\b", re.I)
NOT_VALID = re.compile(r"\bNOT\s+VALID\b", re.I)


def op_findings(op, app, old_state, new_state, sql, conn, created):
    from django.db import migrations as m
    from django.db.models import NOT_PROVIDED

    out = []
    kind = type(op).__name__
    if isinstance(op, m.CreateModel):
        created.add((app, op.name_lower))
        return out
    if isinstance(op, m.RenameModel):
        model = op.old_name_lower
    elif hasattr(op, "model_name_lower"):
        model = op.model_name_lower
    else:
        model = getattr(op, "name_lower", None) if isinstance(op, m.operations.models.ModelOperation) else None
    if model and (app, model) in created:
        return out  # a table created earlier in this same plan: no release uses it yet
    if isinstance(op, m.RunPython) and not op.reversible:
        out.append(("irreversible-python", "RunPython without reverse_code: the migration cannot be unapplied, so a rollback stops here"))
    if isinstance(op, m.RunSQL) and not op.reversible:
        out.append(("irreversible-sql", "RunSQL without reverse_sql: the migration cannot be unapplied, so a rollback stops here"))
    if isinstance(op, m.RemoveField):
        out.append(("drop-column", "drops column %s.%s while the release still serving reads it: remove the field from the code first, drop it in a later release" % (op.model_name, op.name)))
    if isinstance(op, m.DeleteModel):
        out.append(("drop-table", "drops table of %s while the release still serving uses it: stop using the model first, drop it in a later release" % op.name))
    if isinstance(op, m.RenameField):
        out.append(("rename-column", "renames column %s.%s to %s: the release still serving queries the old name; add the new column, copy, then drop the old one later" % (op.model_name, op.old_name, op.new_name)))
    if isinstance(op, m.RenameModel):
        out.append(("rename-table", "renames %s to %s: the release still serving queries the old table" % (op.old_name, op.new_name)))
    if isinstance(op, m.AddField):
        field = op.field
        db_default = getattr(field, "db_default", NOT_PROVIDED)
        if not field.many_to_many and not field.null and db_default is NOT_PROVIDED and not field.primary_key:
            out.append(("not-null-without-db-default", "adds NOT NULL column %s.%s without a database default (db_default); Django's default= is applied only by Django, so inserts from the release still serving fail" % (op.model_name, op.name)))
    if isinstance(op, m.AlterField):
        try:
            old_field = old_state.models[app, op.model_name_lower].get_field(op.name)
            old_type, new_type = old_field.db_type(conn), op.field.db_type(conn)
        except Exception:
            old_type = new_type = None
        if old_type and new_type and old_type != new_type:
            out.append(("column-type-change", "changes the type of %s.%s from %s to %s: the table is rewritten under a lock and the release still serving may break" % (op.model_name, op.name, old_type, new_type)))
    if conn.vendor == "postgresql":
        statements = sql if sql is not None else []
        if sql is None:  # could not render the SQL: judge by the operation
            if kind == "AddIndex" or (kind == "AddConstraint" and type(op.constraint).__name__ == "UniqueConstraint"):
                statements = ["CREATE INDEX"] if kind == "AddIndex" else ["ADD CONSTRAINT x UNIQUE"]
        if any(CREATE_INDEX.search(s) for s in statements):
            out.append(("index-not-concurrent", "creates an index without CONCURRENTLY, blocking writes to the table while it builds: use AddIndexConcurrently in a non-atomic migration"))
        if any(ADD_UNIQUE.search(s) for s in statements):
            out.append(("unique-not-concurrent", "adds a unique constraint, building its index while writes are blocked: create the unique index CONCURRENTLY first, then add the constraint USING INDEX"))
        if any(ADD_FK.search(s) and not NOT_VALID.search(s) for s in statements):
            out.append(("foreign-key-validates", "adds a foreign key without NOT VALID, scanning the table under a lock: add it NOT VALID, then VALIDATE CONSTRAINT separately"))
    return out


def op_line(source_lines, kind, nth):
    count = 0
    for number, line in enumerate(source_lines, 1):
        if re.search(r"\b%s\(" % kind, line):
            if count == nth:
                return number
            count += 1
    return None


def lint(conn, executor, plan):
    import inspect

    loader = executor.loader
    created = set()
    findings = []
    for migration, backwards in plan:
        if backwards:
            continue
        app = migration.app_label
        allow = set(getattr(migration, "slipway_allow", None) or [])
        try:
            source_file = inspect.getsourcefile(type(migration))
            with open(source_file, encoding="utf-8") as fh:
                source_lines = fh.read().splitlines()
        except Exception:
            source_file, source_lines = None, []
        state = loader.project_state((app, migration.name), at_end=False)
        seen_kinds = {}
        try:
            editor = conn.schema_editor(collect_sql=True, atomic=False)
            editor.__enter__()
        except Exception:
            editor = None
        for index, op in enumerate(migration.operations):
            kind = type(op).__name__
            nth = seen_kinds.get(kind, 0)
            seen_kinds[kind] = nth + 1
            old_state = state.clone()
            op.state_forwards(app, state)
            sql = None
            if editor is not None and op.reduces_to_sql:
                n, d = len(editor.collected_sql), len(editor.deferred_sql)
                try:
                    op.database_forwards(app, editor, old_state, state)
                    sql = list(editor.collected_sql[n:]) + [str(s) for s in editor.deferred_sql[d:]]
                except Exception:
                    sql = None
            for rule, reason in op_findings(op, app, old_state, state, sql, conn, created):
                findings.append({
                    "migration": "%s.%s" % (app, migration.name),
                    "app": app,
                    "name": migration.name,
                    "operation": "#%d %s: %s" % (index + 1, kind, op.describe()),
                    "rule": rule,
                    "severity": SEVERITY[rule],
                    "reason": reason,
                    "allowed": rule in allow,
                    "file": source_file,
                    "line": op_line(source_lines, kind, nth),
                })
        if editor is not None:
            try:
                editor.__exit__(None, None, None)
            except Exception:
                pass
    return findings


# ---------------------------------------------------------------------------- commands


def cmd_plan(req):
    conn = connection_for(req.get("database", "default"))
    executor = executor_for(conn)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    result = {
        "vendor": conn.vendor,
        "pending": [{"app": m.app_label, "name": m.name} for m, backwards in plan if not backwards],
        "state": applied_state(executor.loader),
    }
    if req.get("lint"):
        result["findings"] = lint(conn, executor, plan)
    return result


def cmd_state(req):
    conn = connection_for(req.get("database", "default"))
    from django.db.migrations.loader import MigrationLoader

    return {"vendor": conn.vendor, "state": applied_state(MigrationLoader(conn))}


def targets_for(loader, wanted):
    targets = []
    for app, name in sorted(wanted.items()):
        if app not in loader.migrated_apps:
            raise Refusal("target", "app %r has no migrations in this project" % app)
        if name is None:
            targets.append((app, None))
        elif (app, name) not in loader.graph.nodes:
            raise Refusal("target", "migration %s.%s is not in this project's migrations" % (app, name))
        else:
            targets.append((app, name))
    return targets


def cmd_migrate_to(req):
    """Moves apps back to a recorded state, app by app in the order Django would unapply them."""
    from django.core.management import call_command

    alias = req.get("database", "default")
    conn = connection_for(alias)
    executor = executor_for(conn)
    targets = targets_for(executor.loader, req["state"])
    plan = executor.migration_plan(targets)
    forwards = [m for m, backwards in plan if not backwards]
    if forwards and any(b for _, b in plan):
        raise Refusal("target", "the recorded state is ahead of the database for some apps and behind for others")
    steps = [{"app": m.app_label, "name": m.name, "backwards": b} for m, b in plan]
    if req.get("dry"):
        return {"steps": steps}
    for m, b in plan:
        if b:
            irreversible = [op for op in m.operations if not op.reversible]
            if irreversible:
                raise Refusal("irreversible", "%s.%s cannot be unapplied (%s): restore the backup instead" % (m.app_label, m.name, type(irreversible[0]).__name__))
    order = []
    for m, _ in plan:
        if m.app_label not in order:
            order.append(m.app_label)
    for app in order:
        name = dict(targets).get(app)
        call_command("migrate", app, name or "zero", interactive=False, database=alias, verbosity=1)
    from django.db.migrations.loader import MigrationLoader

    return {"steps": steps, "state": applied_state(MigrationLoader(conn))}


def lock_key(conn):
    ident = "slipway-migrate:%s:%s:%s" % (conn.vendor, conn.settings_dict.get("HOST") or "", conn.settings_dict.get("NAME"))
    digest = hashlib.sha256(ident.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True), "slipway:" + hashlib.sha256(ident.encode()).hexdigest()[:48]


def hold_lock(conn, timeout):
    """Takes the migration lock on `conn` (a dedicated connection); returns the function that releases it."""
    deadline = time.monotonic() + timeout
    key, name = lock_key(conn)
    if conn.vendor == "postgresql":
        with conn.cursor() as cur:
            while True:
                cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
                if cur.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    raise Refusal("lock-timeout", holder_pg(cur, key))
                time.sleep(0.25)

        def release():
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [key])
    elif conn.vendor == "mysql":
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", [name, max(0, int(timeout))])
            if cur.fetchone()[0] != 1:
                cur.execute("SELECT IS_USED_LOCK(%s)", [name])
                holder = cur.fetchone()[0]
                raise Refusal("lock-timeout", "held by connection %s" % holder if holder else "held by another session")

        def release():
            with conn.cursor() as cur:
                cur.execute("SELECT RELEASE_LOCK(%s)", [name])
    elif conn.vendor == "sqlite":
        import fcntl

        db = str(conn.settings_dict["NAME"])
        if db == ":memory:" or db.startswith("file:"):
            raise Refusal("lock", "cannot lock an in-memory SQLite database")
        path = db + ".slipway-lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise Refusal("lock-timeout", "lock file %s held by another process" % path)
                time.sleep(0.25)

        def release():
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    else:
        raise Refusal("lock", "no migration lock for the %s backend" % conn.vendor)

    def release_and_close():
        try:
            release()
        finally:
            conn.close()

    return release_and_close


def cmd_lock(req):
    """Takes the migration lock on a dedicated connection, says so, holds it until stdin closes."""
    conn = connection_for(req.get("database", "default"), dedicated=True)
    release = hold_lock(conn, float(req.get("timeout", 300)))
    sys.stdout.write("SLIPWAY_LOCKED\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()
    finally:
        release()
    return {"released": True}


def cmd_apply(req):
    """`migrate --noinput` in this process (its output streamed), then what is still pending and the state."""
    from django.core.management import call_command
    from django.db import connections

    alias = req.get("database", "default")
    connection_for(alias)
    error = None
    try:
        call_command("migrate", interactive=False, database=alias, verbosity=1, skip_checks=False)
    except Exception as exc:
        traceback.print_exc()
        error = first_line(exc)
    sys.stdout.flush()
    sys.stderr.flush()
    if error:
        connections[alias].close()  # a failed migration may leave the connection unusable
    after = cmd_plan({"database": alias})
    return {"ok": error is None, "failure": error, "pending": after["pending"], "state": after["state"]}


def cmd_has_app(req):
    from django.apps import apps

    return {"installed": apps.is_installed(req["app"])}


def cmd_session(req):
    """One Django start-up for a whole run: answers requests (one JSON object per stdin line, one
    SLIPWAY_JSON line each) until stdin closes. `lock` holds the migration lock on a dedicated
    connection until `unlock`, or until stdin closes or the process ends (the server drops it)."""
    alias = req.get("database", "default")
    held = []

    def handle(r):
        cmd = r.get("cmd")
        if cmd == "lock":
            if held:
                raise Refusal("lock", "this session already holds the migration lock")
            conn = connection_for(alias, dedicated=True)
            try:
                held.append(hold_lock(conn, float(r.get("timeout", 300))))
            except BaseException:
                conn.close()
                raise
            return {"locked": True}
        if cmd == "unlock":
            if held:
                held.pop()()
            return {"released": True}
        if cmd in SESSION_COMMANDS:
            return SESSION_COMMANDS[cmd](dict(r, database=alias))
        raise Refusal("request", "unknown session request %r" % cmd)

    emit({"ready": True, "project": req.get("project")})
    try:
        while True:
            line = sys.stdin.readline()
            if not line:
                break
            if not line.strip():
                continue
            try:
                emit(handle(json.loads(line)))
            except Refusal as exc:
                emit({"error": exc.kind, "message": str(exc)})
            except Exception as exc:
                emit({"error": "failed", "message": first_line(exc), "trace": traceback.format_exc()[-3000:]})
    finally:
        while held:
            held.pop()()
    return {"closed": True}


def holder_pg(cur, key):
    classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    cur.execute(
        "SELECT a.pid, a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s",
        [classid, objid],
    )
    row = cur.fetchone()
    return "held by backend pid %s (%s)" % (row[0], row[2] or "local") if row else "held by another session"


def cmd_settings(req):
    from django.conf import settings

    dbs = []
    for alias, db in settings.DATABASES.items():
        engine = db.get("ENGINE", "")
        vendor = next((v for v in ("postgresql", "postgis", "mysql", "sqlite3", "spatialite", "oracle") if v in engine), "other")
        dbs.append({
            "alias": alias, "engine": engine, "vendor": vendor,
            "name": str(db.get("NAME") or ""), "user": str(db.get("USER") or ""),
            "password": str(db.get("PASSWORD") or ""), "host": str(db.get("HOST") or ""),
            "port": str(db.get("PORT") or ""),
            "options": {k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, (str, int, float, bool))},
            "testName": (db.get("TEST") or {}).get("NAME"),
        })
    return {"databases": dbs}


SESSION_COMMANDS = {
    "settings": cmd_settings,
    "plan": cmd_plan,
    "state": cmd_state,
    "apply": cmd_apply,
    "has-app": cmd_has_app,
    "migrate-to": cmd_migrate_to,
}
COMMANDS = dict(SESSION_COMMANDS, lock=cmd_lock, session=cmd_session)


SETTINGS_DEFAULT = re.compile(r"""DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][\w.]*)["']""")


def locate_project():
    """The project folder (SLIPWAY_PROJECT_DIR, relative to the current folder, else the current
    folder: the image's WORKDIR in image mode) and where its settings come from: the environment,
    else manage.py's own os.environ.setdefault, as `manage.py` itself would find them."""
    start = os.getcwd()
    wanted = os.environ.pop("SLIPWAY_PROJECT_DIR", "")
    if wanted:
        try:
            os.chdir(wanted)
        except OSError as exc:
            raise Refusal("project-dir", "no folder %s (from %s): %s" % (wanted, start, exc.strerror))
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    manage = os.path.join(here, "manage.py")
    has_manage = os.path.isfile(manage)
    module, source = os.environ.get("DJANGO_SETTINGS_MODULE", ""), "environment"
    if not module and has_manage:
        with open(manage, encoding="utf-8", errors="replace") as f:
            found = SETTINGS_DEFAULT.search(f.read())
        if found:
            module, source = found.group(1), "manage.py"
            os.environ["DJANGO_SETTINGS_MODULE"] = module
    if not module:
        where = "%s sets no default" % manage if has_manage else "there is no manage.py in %s" % here
        raise Refusal("settings", "DJANGO_SETTINGS_MODULE is not set, and %s" % where)
    return {"projectDir": here, "managePy": has_manage, "settingsModule": module, "settingsFrom": source}


def main():
    req = json.loads(sys.argv[1])
    try:
        req["project"] = locate_project()
    except Refusal as exc:
        emit({"error": exc.kind, "message": str(exc)})
        return
    try:
        import django
    except Exception as exc:
        emit({"error": "import-django", "message": first_line(exc)})
        return
    try:
        django.setup()
    except Exception as exc:
        emit({"error": "setup", "message": first_line(exc), "module": req["project"]["settingsModule"]})
        return
    try:
        emit(COMMANDS[req["cmd"]](req))
    except Refusal as exc:
        emit({"error": exc.kind, "message": str(exc)})
    except Exception as exc:
        emit({"error": "failed", "message": first_line(exc), "trace": traceback.format_exc()[-3000:]})


main()
