"""Running orquestrator scripts: a subprocess with a scrubbed environment and limits."""

from bigdata_paas.orquestrator.runner import RunResult, ScriptLimits, run_script

__all__ = ["RunResult", "ScriptLimits", "run_script"]
