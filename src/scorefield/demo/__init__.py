"""The reference walkthrough (SPEC section 2) end to end: `scorefield demo`.

    from scorefield.demo import DemoSettings, run_demo
    result = run_demo("demo-out", DemoSettings.fast())
    result.index  # demo-out/index.html: every figure and animation, captioned
"""

from ._run import STEPS, DemoResult, prepare_out, run_demo
from ._settings import DemoSettings
from ._steps import Artifact, mixture

__all__ = ["run_demo", "DemoSettings", "DemoResult", "Artifact", "STEPS", "prepare_out", "mixture"]
