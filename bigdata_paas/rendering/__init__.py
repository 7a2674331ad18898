"""Options, sandboxed template rendering and instance-spec validation (plain data only)."""

from bigdata_paas.rendering.context import RESERVED_NAMES, TRIAL_INSTANCE_ID, instance_context
from bigdata_paas.rendering.options import (
    check_options_document,
    merge_options,
    option_defaults,
    option_types,
    validate_options_document,
)
from bigdata_paas.rendering.spec import node_roles, validate_spec
from bigdata_paas.rendering.template import (
    RenderLimits,
    check_syntax,
    render_spec,
    render_text,
)

__all__ = [
    "RESERVED_NAMES",
    "TRIAL_INSTANCE_ID",
    "RenderLimits",
    "check_options_document",
    "check_syntax",
    "instance_context",
    "merge_options",
    "node_roles",
    "option_defaults",
    "option_types",
    "render_spec",
    "render_text",
    "validate_options_document",
    "validate_spec",
]
