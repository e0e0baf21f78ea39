#!/usr/bin/env node
// Generates a Django project with a realistic, uneven test suite for the run-tests benchmark:
// `node bench/run-tests/generate.mjs <dir> [tests=312]`. Six apps (models, a JSON list view, a
// template page), each with several test modules of TestCase classes that create rows, query,
// aggregate, render and call views through the test client. Work per test varies the way real
// suites do (most tests quick, a few report-style tests slow), from a seeded generator, so the
// same suite comes out every time.
import * as fs from 'node:fs';
import * as path from 'node:path';

const dir = path.resolve(process.argv[2] ?? 'bench-suite');
const total = Number(process.argv[3] ?? 312);
const APPS = ['accounts', 'billing', 'catalog', 'inventory', 'reports', 'shipping'];
// Some apps are heavier than others, as in real projects (reports crunch more rows).
const WEIGHT = { accounts: 0.6, billing: 1.5, catalog: 1, inventory: 0.8, reports: 3, shipping: 0.7 };

let seed = 20261122;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
// Rows a test works with: mostly small, a long tail (report-style tests).
const rows = () => {
  const r = rand();
  if (r < 0.7) return 5 + Math.floor(rand() * 40);
  if (r < 0.93) return 80 + Math.floor(rand() * 250);
  return 600 + Math.floor(rand() * 900);
};

const write = (rel, text) => {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), text);
};

fs.rmSync(dir, { recursive: true, force: true });
write(
  'manage.py',
  `#!/usr/bin/env python
import os, sys
if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
`,
);
write('benchsite/__init__.py', '');
write(
  'benchsite/settings.py',
  `import os
from pathlib import Path
import dj_database_url
BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", ${APPS.map((a) => `"${a}"`).join(', ')}]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "benchsite.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True, "OPTIONS": {}}]
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
`,
);
write(
  'benchsite/urls.py',
  `from django.urls import include, path
urlpatterns = [${APPS.map((a) => `path("${a}/", include("${a}.urls"))`).join(', ')}]
`,
);

const perApp = Math.ceil(total / APPS.length);
let made = 0;
for (const app of APPS) {
  const Model = app[0].toUpperCase() + app.slice(1, -1).replace(/ie$/, 'y') + 'Item';
  write(`${app}/__init__.py`, '');
  write(`${app}/apps.py`, `from django.apps import AppConfig\nclass Config(AppConfig):\n    name = "${app}"\n`);
  write(
    `${app}/models.py`,
    `from django.db import models

class Group(models.Model):
    name = models.CharField(max_length=50, unique=True)

class ${Model}(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="items")
    code = models.CharField(max_length=40, db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.IntegerField(default=0)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]
`,
  );
  write(`${app}/migrations/__init__.py`, '');
  write(
    `${app}/migrations/0001_initial.py`,
    `from django.db import migrations, models
import django.db.models.deletion

class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(name="Group", fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("name", models.CharField(max_length=50, unique=True))]),
        migrations.CreateModel(name="${Model}", fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("code", models.CharField(db_index=True, max_length=40)),
            ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
            ("quantity", models.IntegerField(default=0)),
            ("note", models.TextField(blank=True)),
            ("group", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="items", to="${app}.group"))],
            options={"ordering": ["code"]}),
    ]
`,
  );
  write(
    `${app}/views.py`,
    `from django.db.models import Sum
from django.http import JsonResponse
from django.shortcuts import render
from .models import ${Model}

def items(request):
    qs = ${Model}.objects.select_related("group")
    if "group" in request.GET:
        qs = qs.filter(group__name=request.GET["group"])
    return JsonResponse({"items": [{"code": i.code, "amount": str(i.amount), "group": i.group.name} for i in qs],
                         "total": str(qs.aggregate(t=Sum("amount"))["t"] or 0)})

def page(request):
    return render(request, "${app}/page.html", {"items": ${Model}.objects.select_related("group")})
`,
  );
  write(
    `${app}/urls.py`,
    `from django.urls import path\nfrom . import views\nurlpatterns = [path("items/", views.items), path("page/", views.page)]\n`,
  );
  write(
    `${app}/templates/${app}/page.html`,
    `<ul>{% for i in items %}<li>{{ i.group.name|upper }} {{ i.code }} {{ i.amount|floatformat:2 }} x{{ i.quantity }}</li>{% empty %}<li>none</li>{% endfor %}</ul>\n`,
  );

  // Test modules of uneven size, each with TestCase classes of 2 to 8 tests.
  const count = Math.min(perApp, total - made);
  const sizes = [0.4, 0.25, 0.2, 0.15].map((f) => Math.round(count * f));
  sizes[0] += count - sizes.reduce((s, x) => s + x, 0);
  write(`${app}/tests/__init__.py`, '');
  write(
    `${app}/tests/helpers.py`,
    `from decimal import Decimal
from ${app}.models import Group, ${Model}

def make_rows(n, group="g"):
    g, _ = Group.objects.get_or_create(name=group)
    ${Model}.objects.bulk_create(
        ${Model}(group=g, code=f"c{i:05d}", amount=Decimal(i % 97) + Decimal("0.25"), quantity=i % 13, note="x" * (i % 50))
        for i in range(n))
    return g
`,
  );
  sizes.forEach((size, m) => {
    const mod = ['test_models', 'test_api', 'test_pages', 'test_reports'][m];
    let body = `from decimal import Decimal\n\nfrom django.db.models import Avg, Count, F, Sum\nfrom django.test import TestCase\n\nfrom ${app}.models import Group, ${Model}\n\nfrom .helpers import make_rows\n\n`;
    let left = size;
    let cls = 0;
    while (left > 0) {
      const n = Math.min(left, 2 + Math.floor(rand() * 7));
      left -= n;
      body += `\nclass ${Model}${mod.slice(5).replace(/^./, (c) => c.toUpperCase())}Tests${cls++}(TestCase):\n`;
      for (let t = 0; t < n; t++) {
        const k = Math.max(3, Math.round(rows() * WEIGHT[app] * (m === 3 ? 1.8 : 1)));
        const kind = (made + t) % 4;
        body += `    def test_${kind === 0 ? 'aggregates' : kind === 1 ? 'json_list' : kind === 2 ? 'page_renders' : 'bulk_update'}_${t}_${k}(self):\n`;
        body += `        make_rows(${k})\n`;
        if (kind === 0) {
          body += `        stats = ${Model}.objects.aggregate(n=Count("id"), total=Sum("amount"), avg=Avg("quantity"))\n`;
          body += `        self.assertEqual(stats["n"], ${k})\n        self.assertGreater(stats["total"], Decimal("0"))\n`;
          body += `        for i in range(0, ${k}, 7):\n            self.assertTrue(${Model}.objects.filter(code=f"c{i:05d}").exists())\n`;
        } else if (kind === 1) {
          body += `        response = self.client.get("/${app}/items/", {"group": "g"})\n        self.assertEqual(response.status_code, 200)\n`;
          body += `        self.assertEqual(len(response.json()["items"]), ${k})\n`;
        } else if (kind === 2) {
          body += `        response = self.client.get("/${app}/page/")\n        self.assertContains(response, "<li>", count=${k})\n`;
        } else {
          body += `        for item in ${Model}.objects.all()[: ${k}]:\n            item.quantity = F("quantity") + 1\n            item.save(update_fields=["quantity"])\n`;
          body += `        self.assertEqual(${Model}.objects.filter(quantity=0).count(), 0)\n`;
        }
        made++;
      }
    }
    write(`${app}/tests/${mod}.py`, body);
  });
}
write('requirements.txt', 'Django==5.2.19\ndj-database-url==3.1.2\n');
console.log(`generated ${made} tests in ${APPS.length} apps under ${dir}`);
