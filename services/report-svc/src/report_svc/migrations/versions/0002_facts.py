"""report schema: the facts behind every figure (deployments, commits, incidents, releases, gates, evidence,
pipeline runs, catalogue, green-zone calendar, heartbeats) and the stored release reports

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"

STATEMENTS = [
    """CREATE TABLE report.fact_versions (
    service VARCHAR(200) NOT NULL,
    writer VARCHAR(100) NOT NULL,
    version BIGINT NOT NULL,
    CONSTRAINT pk_fact_versions PRIMARY KEY (service, writer)
)""",
    # ids are opaque strings of other services, not necessarily UUIDs
    "ALTER TABLE report.changes ALTER COLUMN change_id TYPE VARCHAR(100)",
    "ALTER TABLE report.change_events ALTER COLUMN change_id TYPE VARCHAR(100)",
    """CREATE TABLE report.catalogue_services (
    name VARCHAR(200) NOT NULL,
    team VARCHAR(200),
    repositories JSONB NOT NULL,
    artifacts JSONB NOT NULL,
    registered_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_catalogue_services PRIMARY KEY (name)
)""",
    """CREATE INDEX ix_report_catalogue_services_team ON report.catalogue_services (team)""",
    """CREATE TABLE report.change_lifecycle (
    change_id VARCHAR(100) NOT NULL,
    planned_start TIMESTAMP WITH TIME ZONE,
    planned_end TIMESTAMP WITH TIME ZONE,
    release_id VARCHAR(100),
    submitted_at TIMESTAMP WITH TIME ZONE,
    approved_at TIMESTAMP WITH TIME ZONE,
    rejected_at TIMESTAMP WITH TIME ZONE,
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    cancelled_at TIMESTAMP WITH TIME ZONE,
    closed_at TIMESTAMP WITH TIME ZONE,
    outcome VARCHAR(20),
    outcome_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_change_lifecycle PRIMARY KEY (change_id)
)""",
    """CREATE TABLE report.commits (
    service VARCHAR(200) NOT NULL,
    commit_key VARCHAR(300) NOT NULL,
    sha VARCHAR(100),
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    pushed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_commits PRIMARY KEY (service, commit_key)
)""",
    """CREATE TABLE report.deployment_reports (
    report_key VARCHAR(300) NOT NULL,
    service VARCHAR(200) NOT NULL,
    environment VARCHAR(100) NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    outcome VARCHAR(20) NOT NULL,
    commit VARCHAR(100),
    version VARCHAR(100),
    source VARCHAR(50) NOT NULL,
    change_id VARCHAR(100),
    release_id VARCHAR(100),
    CONSTRAINT pk_deployment_reports PRIMARY KEY (report_key)
)""",
    """CREATE INDEX ix_deployment_reports_target ON report.deployment_reports (service, environment, at)""",
    """CREATE TABLE report.environments (
    name VARCHAR(100) NOT NULL,
    rank INTEGER NOT NULL,
    protected BOOLEAN NOT NULL,
    production BOOLEAN NOT NULL,
    defined_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_environments PRIMARY KEY (name)
)""",
    """CREATE TABLE report.freezes (
    freeze_id VARCHAR(100) NOT NULL,
    name VARCHAR(200),
    start TIMESTAMP WITH TIME ZONE,
    "end" TIMESTAMP WITH TIME ZONE,
    environments JSONB NOT NULL,
    services JSONB NOT NULL,
    reason VARCHAR(1000),
    lifted_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_freezes PRIMARY KEY (freeze_id)
)""",
    """CREATE TABLE report.gate_decisions (
    decision_id VARCHAR(100) NOT NULL,
    service VARCHAR(200) NOT NULL,
    environment VARCHAR(100) NOT NULL,
    version VARCHAR(100),
    commit VARCHAR(100),
    decision VARCHAR(10) NOT NULL,
    reasons JSONB NOT NULL,
    change_id VARCHAR(100),
    evaluated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_gate_decisions PRIMARY KEY (decision_id)
)""",
    """CREATE INDEX ix_gate_decisions_target ON report.gate_decisions (service, environment, evaluated_at)""",
    """CREATE TABLE report.heartbeats (
    service VARCHAR(200) NOT NULL,
    instance VARCHAR(200) NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    outbox_backlog INTEGER NOT NULL,
    oldest_unpublished_age_seconds FLOAT,
    dlq_counts JSONB NOT NULL,
    consumer_lag JSONB NOT NULL,
    received_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_heartbeats PRIMARY KEY (service, instance)
)""",
    """CREATE TABLE report.incidents (
    incident_id VARCHAR(200) NOT NULL,
    service VARCHAR(200) NOT NULL,
    environment VARCHAR(100) NOT NULL,
    title VARCHAR(500),
    severity VARCHAR(50),
    version VARCHAR(100),
    commit VARCHAR(100),
    started_at TIMESTAMP WITH TIME ZONE,
    resolved_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_incidents PRIMARY KEY (incident_id)
)""",
    """CREATE INDEX ix_incidents_target ON report.incidents (service, environment)""",
    """CREATE TABLE report.pipeline_runs (
    run_key VARCHAR(500) NOT NULL,
    service VARCHAR(200) NOT NULL,
    pipeline VARCHAR(300) NOT NULL,
    run_id VARCHAR(200) NOT NULL,
    outcome VARCHAR(20) NOT NULL,
    queued_at TIMESTAMP WITH TIME ZONE,
    started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE NOT NULL,
    duration_s FLOAT,
    queue_s FLOAT,
    commit VARCHAR(100),
    source VARCHAR(50) NOT NULL,
    CONSTRAINT pk_pipeline_runs PRIMARY KEY (run_key)
)""",
    """CREATE INDEX ix_pipeline_runs_finished ON report.pipeline_runs (finished_at)""",
    """CREATE TABLE report.release_reports (
    release_id VARCHAR(100) NOT NULL,
    body JSONB NOT NULL,
    generated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_release_reports PRIMARY KEY (release_id)
)""",
    """CREATE TABLE report.releases (
    release_id VARCHAR(100) NOT NULL,
    name VARCHAR(200) NOT NULL,
    version VARCHAR(100) NOT NULL,
    services JSONB NOT NULL,
    changes JSONB NOT NULL,
    state VARCHAR(30) NOT NULL,
    snapshot_at TIMESTAMP WITH TIME ZONE NOT NULL,
    milestones JSONB,
    milestones_at TIMESTAMP WITH TIME ZONE,
    planned_at TIMESTAMP WITH TIME ZONE,
    els_started_at TIMESTAMP WITH TIME ZONE,
    els_ends_at TIMESTAMP WITH TIME ZONE,
    closed_at TIMESTAMP WITH TIME ZONE,
    cancelled_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_releases PRIMARY KEY (release_id)
)""",
    """CREATE TABLE report.rollbacks (
    rollback_key VARCHAR(300) NOT NULL,
    service VARCHAR(200) NOT NULL,
    environment VARCHAR(100) NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    version VARCHAR(100),
    release_id VARCHAR(100),
    CONSTRAINT pk_rollbacks PRIMARY KEY (rollback_key)
)""",
    """CREATE INDEX ix_rollbacks_target ON report.rollbacks (service, environment, at)""",
    """CREATE TABLE report.scan_evidence (
    evidence_key VARCHAR(300) NOT NULL,
    service VARCHAR(200) NOT NULL,
    version VARCHAR(100),
    commit VARCHAR(100),
    tool VARCHAR(100),
    critical INTEGER NOT NULL,
    high INTEGER NOT NULL,
    medium INTEGER NOT NULL,
    low INTEGER NOT NULL,
    reported_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_scan_evidence PRIMARY KEY (evidence_key)
)""",
    """CREATE INDEX ix_scan_evidence_service ON report.scan_evidence (service, version)""",
    """CREATE TABLE report.test_evidence (
    evidence_key VARCHAR(300) NOT NULL,
    service VARCHAR(200) NOT NULL,
    version VARCHAR(100),
    commit VARCHAR(100),
    suite VARCHAR(200),
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    outcome VARCHAR(20) NOT NULL,
    reported_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_test_evidence PRIMARY KEY (evidence_key)
)""",
    """CREATE INDEX ix_test_evidence_service ON report.test_evidence (service, version)""",
    """CREATE TABLE report.windows (
    window_id VARCHAR(100) NOT NULL,
    environment VARCHAR(100) NOT NULL,
    days JSONB NOT NULL,
    start TIME WITHOUT TIME ZONE NOT NULL,
    "end" TIME WITHOUT TIME ZONE NOT NULL,
    timezone VARCHAR(100) NOT NULL,
    defined_at TIMESTAMP WITH TIME ZONE NOT NULL,
    removed_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_windows PRIMARY KEY (window_id)
)""",
]
TABLES = [
    "fact_versions",
    "catalogue_services",
    "change_lifecycle",
    "commits",
    "deployment_reports",
    "environments",
    "freezes",
    "gate_decisions",
    "heartbeats",
    "incidents",
    "pipeline_runs",
    "release_reports",
    "releases",
    "rollbacks",
    "scan_evidence",
    "test_evidence",
    "windows",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f'DROP TABLE IF EXISTS report."{table}"')
