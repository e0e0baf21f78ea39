import type { ProjectFacts } from './inspect';

/**
 * compose.yaml for local development: the app built from the project's Dockerfile, a one-shot
 * `migrate` service, and the database the settings use (PostgreSQL or MySQL; SQLite lives in a
 * volume). Values are local-only and say so. The app reads DATABASE_URL.
 */
export function renderCompose(facts: ProjectFacts): string {
  const dockerfile = facts.dockerfile ?? 'Dockerfile';
  // The image's working directory holds manage.py (build-image's generated Dockerfile does so).
  const manage = 'manage.py';
  const db = database(facts.database.vendor);
  return `# Local development, written by slipway init: docker compose up, then http://localhost:8000
# Everything here is for a laptop only: throwaway passwords and a development secret key.
name: ${composeName(facts)}

services:
  web:
    build:
      context: .
      dockerfile: ${dockerfile}
    ports:
      - "8000:8000"
    environment: &app-env
      DATABASE_URL: ${db.url}
      DJANGO_SECRET_KEY: local-development-only-not-secret
      DJANGO_DEBUG: "true"
      DJANGO_ALLOWED_HOSTS: localhost,127.0.0.1
${facts.settingsModule ? `      DJANGO_SETTINGS_MODULE: ${facts.settingsModule}\n` : ''}    depends_on:
      migrate:
        condition: service_completed_successfully
${db.volumeMount}
  migrate:
    build:
      context: .
      dockerfile: ${dockerfile}
    command: ["python", "${manage}", "migrate", "--noinput"]
    environment: *app-env
${db.dependsOn}${db.volumeMount}${db.service}
volumes:
  ${db.volume}:
`;
}

function composeName(facts: ProjectFacts): string {
  const base = (facts.settingsModule?.split('.')[0] ?? 'django').toLowerCase().replace(/[^a-z0-9_-]/g, '-');
  return /^[a-z0-9]/.test(base) ? base : `app-${base}`;
}

function database(vendor: ProjectFacts['database']['vendor']): {
  url: string;
  service: string;
  dependsOn: string;
  volume: string;
  volumeMount: string;
} {
  if (vendor === 'postgresql') {
    return {
      url: 'postgres://django:django@db:5432/django',
      dependsOn: `    depends_on:
      db:
        condition: service_healthy
`,
      volume: 'db-data',
      volumeMount: '',
      service: `
  db:
    image: postgres:17
    environment:
      POSTGRES_USER: django
      POSTGRES_PASSWORD: django
      POSTGRES_DB: django
    volumes:
      - db-data:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U django -d django"]
      interval: 2s
      timeout: 5s
      retries: 30
`,
    };
  }
  if (vendor === 'mysql') {
    return {
      url: 'mysql://django:django@db:3306/django',
      dependsOn: `    depends_on:
      db:
        condition: service_healthy
`,
      volume: 'db-data',
      volumeMount: '',
      service: `
  db:
    image: mysql:8.4
    environment:
      MYSQL_ROOT_PASSWORD: django-root
      MYSQL_USER: django
      MYSQL_PASSWORD: django
      MYSQL_DATABASE: django
    volumes:
      - db-data:/var/lib/mysql
    healthcheck:
      test: ["CMD", "mysqladmin", "ping", "-h", "127.0.0.1", "-udjango", "-pdjango"]
      interval: 2s
      timeout: 5s
      retries: 30
`,
    };
  }
  return {
    url: 'sqlite:////data/db.sqlite3',
    dependsOn: '',
    volume: 'sqlite-data',
    volumeMount: `    volumes:
      - sqlite-data:/data
`,
    service: '',
  };
}
