"""Every ORM model of the service, imported once so the metadata knows all tables."""

from release_svc.audit.service import AUDIT
from release_svc.catalogue.models import Service
from release_svc.environments.models import Environment
from release_svc.freezes.models import Freeze
from release_svc.gates.models import GateDecisionRecord
from release_svc.notifications.models import NotificationDelivery
from release_svc.projections.models import ChangeView, Deployment, Incident, Rollback, ScanReport, TestReport
from release_svc.releases.models import Release
from release_svc.windows.models import Window

__all__ = [
    "AUDIT",
    "ChangeView",
    "Deployment",
    "Environment",
    "Freeze",
    "GateDecisionRecord",
    "Incident",
    "NotificationDelivery",
    "Release",
    "Rollback",
    "ScanReport",
    "Service",
    "TestReport",
    "Window",
]
