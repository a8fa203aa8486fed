"""The command line's pipelines as library functions returning result objects.

:func:`run_demo` (``switchssm demo``), :func:`fit_dataset` (``switchssm fit``),
:func:`compare_fit` (``switchssm compare``) and :func:`train_state_tracker` /
:func:`state_tracking_table` (``switchssm statetrack``), each with a writer of its report
folder; a :class:`ReportFolder` is written as one unit.
"""

from switchssm.pipelines._report import ReportFolder as ReportFolder
from switchssm.pipelines.comparison import CompareResult as CompareResult
from switchssm.pipelines.comparison import compare_fit as compare_fit
from switchssm.pipelines.comparison import write_compare_report as write_compare_report
from switchssm.pipelines.demo import DemoResult as DemoResult
from switchssm.pipelines.demo import demo_params as demo_params
from switchssm.pipelines.demo import run_demo as run_demo
from switchssm.pipelines.demo import write_demo_report as write_demo_report
from switchssm.pipelines.fitting import Observations as Observations
from switchssm.pipelines.fitting import fit_dataset as fit_dataset
from switchssm.pipelines.fitting import load_observations as load_observations
from switchssm.pipelines.fitting import write_fit_report as write_fit_report
from switchssm.pipelines.state_tracking import BILINEAR_CELLS as BILINEAR_CELLS
from switchssm.pipelines.state_tracking import STATETRACK_CELLS as STATETRACK_CELLS
from switchssm.pipelines.state_tracking import StateTrackingResult as StateTrackingResult
from switchssm.pipelines.state_tracking import state_tracking_table as state_tracking_table
from switchssm.pipelines.state_tracking import train_state_tracker as train_state_tracker
from switchssm.pipelines.state_tracking import (
    write_state_tracking_report as write_state_tracking_report,
)
