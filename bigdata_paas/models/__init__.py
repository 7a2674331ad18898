"""SQLAlchemy models, one module per aggregate."""

from bigdata_paas.models.audit import AuditEvent, Setting
from bigdata_paas.models.base import Base, iso, utcnow
from bigdata_paas.models.claim import Claim
from bigdata_paas.models.instance import Event, Instance, LogLine, Node, new_instance_id
from bigdata_paas.models.inventory import HOST_STATES, Address, Host, HostDisk, Network
from bigdata_paas.models.service import Service
from bigdata_paas.models.user import ROLES, User

__all__ = [
    "HOST_STATES",
    "ROLES",
    "Address",
    "AuditEvent",
    "Base",
    "Claim",
    "Event",
    "Host",
    "HostDisk",
    "Instance",
    "LogLine",
    "Network",
    "Node",
    "Service",
    "Setting",
    "User",
    "iso",
    "new_instance_id",
    "utcnow",
]
