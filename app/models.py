"""Every model, imported in one place so Alembic and relationships can see them all."""

from app.audit.models import AuditEvent  # noqa: F401
from app.auth.models import LoginAttempt, Organisation, User, UserSession  # noqa: F401
from app.directory.models import Place, Service, ServiceGap  # noqa: F401
from app.notifications.models import Notification  # noqa: F401
from app.referrals.models import Consent, FormSubmission, Referral, ReferralTarget, StepDraft  # noqa: F401
from app.sms.models import InboundMessage, OptOut, OutboxMessage  # noqa: F401
from app.studio.models import PathwayDraft  # noqa: F401
from app.workflow.models import Pathway, PathwayVersion, WorkflowInstance, WorkflowTask  # noqa: F401
