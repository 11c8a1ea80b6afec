"""All models, imported here so that Alembic's metadata and the mappers see every table."""
from app.models.assessment import Assessment, AssessmentIndicator  # noqa: F401
from app.models.base import Entity, Scope  # noqa: F401
from app.models.cobuild import (  # noqa: F401
    Agreement,
    MemberRegistration,
    PointEntry,
    PointRule,
    PostClaim,
    ServicePost,
    ServiceRecord,
    StarRating,
    UnitRegistration,
)
from app.models.import_maps import ImportValueMap  # noqa: F401
from app.models.inspections import (  # noqa: F401
    FindingPhoto,
    Inspection,
    InspectionFinding,
    InspectionItem,
    Rectification,
    RectificationNote,
)
from app.models.jobs import FileChunk, Job, StoredFile  # noqa: F401
from app.models.lists import MicroWish, Need, Resource, ServiceItem  # noqa: F401
from app.models.meetings import (  # noqa: F401
    AgendaItem,
    Attendance,
    BodyMember,
    JointBody,
    Meeting,
    MeetingAttachment,
    Resolution,
    SupervisionNote,
)
from app.models.notices import Notice  # noqa: F401
from app.models.org import Dictionary, Member, Organization, Unit  # noqa: F401
from app.models.records import AuditLog  # noqa: F401
from app.models.reports import WorkReport  # noqa: F401
from app.models.rollups import (  # noqa: F401
    NeedCount,
    NeedNode,
    PointBalance,
    PointsPaidCell,
    RegistrationCount,
    RegistrationNode,
    RollupLock,
    RollupMark,
    ServiceHoursCell,
    ServiceHoursNode,
)
from app.models.workplan import WorkPlanItem, WorkPlanNote  # noqa: F401
from app.security.models import UserAccount  # noqa: F401
