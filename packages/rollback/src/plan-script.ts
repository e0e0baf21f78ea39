/**
 * Runs inside the project's image (python -c) and answers one JSON line, prefixed SLIPWAY_JSON:.
 * `path`: the migrations between the live database and a recorded state, in the order Django
 * runs them, each backwards step with its irreversible operation (if any) and the data its undo
 * drops (columns and tables, with row counts). `counts`: rows per Django table, to say what a
 * restore loses. Reads only; never changes the database.
 */
export const PLAN_SCRIPT = String.raw`
import json, sys, traceback

def emit(obj):
    sys.stdout.write("\nSLIPWAY_JSON:" + json.dumps(obj) + "\n")
    sys.stdout.flush()

def first_line(exc):
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__

def graph_order(loader):
    seen, order = set(), []
    for leaf in sorted(loader.graph.leaf_nodes()):
        for node in loader.graph.forwards_plan(leaf):
            if node not in seen:
                seen.add(node)
                order.append(node)
    return order

def applied_state(loader):
    applied = set(loader.applied_migrations)
    state = {app: None for app in sorted(loader.migrated_apps)}
    for node in graph_order(loader):
        if node in applied and node[0] in state:
            state[node[0]] = node[1]
    return state

def count(conn, table, column=None):
    q = conn.ops.quote_name
    sql = "SELECT COUNT(*) FROM %s" % q(table)
    if column:
        sql += " WHERE %s IS NOT NULL" % q(column)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    except Exception:
        return None

def losses(conn, loader, migration):
    from django.db.migrations import operations as ops
    state = loader.project_state((migration.app_label, migration.name), at_end=True)
    out = []
    for op in migration.operations:
        try:
            if isinstance(op, ops.AddField):
                model = state.apps.get_model(migration.app_label, op.model_name)
                field = model._meta.get_field(op.name)
                table, column = model._meta.db_table, field.column
                out.append({"what": "column %s.%s" % (table, column), "rows": count(conn, table, column)})
            elif isinstance(op, ops.CreateModel):
                table = state.apps.get_model(migration.app_label, op.name)._meta.db_table
                out.append({"what": "table %s" % table, "rows": count(conn, table)})
        except Exception as exc:
            out.append({"what": "%s (%s)" % (type(op).__name__, first_line(exc)), "rows": None})
    return out

def cmd_path(conn, req):
    from django.db.migrations.executor import MigrationExecutor
    executor = MigrationExecutor(conn)
    loader = executor.loader
    missing, targets = [], []
    for app, name in sorted(req["state"].items()):
        if app not in loader.migrated_apps:
            missing.append("%s (app)" % app)
        elif name is not None and (app, name) not in loader.graph.nodes:
            missing.append("%s.%s" % (app, name))
        else:
            targets.append((app, name))
    now = applied_state(loader)
    if missing:
        return {"known": False, "missing": missing, "state": now, "steps": []}
    steps = []
    for m, backwards in executor.migration_plan(targets):
        step = {"app": m.app_label, "name": m.name, "backwards": backwards, "irreversible": None, "losses": []}
        if backwards:
            bad = [op for op in m.operations if not op.reversible]
            if bad:
                step["irreversible"] = type(bad[0]).__name__
            step["losses"] = losses(conn, loader, m)
        steps.append(step)
    return {"known": True, "missing": [], "state": now, "steps": steps}

def cmd_counts(conn, req):
    tables = conn.introspection.django_table_names(only_existing=True, include_views=False)
    return {"counts": {t: count(conn, t) for t in sorted(tables)}}

def main():
    req = json.loads(sys.argv[1])
    try:
        import django
        django.setup()
    except Exception as exc:
        emit({"error": "setup", "message": first_line(exc)})
        return
    from django.db import connections
    alias = req.get("database", "default")
    if alias not in connections.settings:
        emit({"error": "alias", "message": "database alias %r is not in settings.DATABASES" % alias})
        return
    conn = connections[alias]
    try:
        conn.ensure_connection()
    except Exception as exc:
        emit({"error": "connect", "message": first_line(exc)})
        return
    try:
        emit({"path": cmd_path, "counts": cmd_counts}[req["cmd"]](conn, req))
    except Exception as exc:
        emit({"error": "crash", "message": first_line(exc), "trace": traceback.format_exc()})

main()
`;
