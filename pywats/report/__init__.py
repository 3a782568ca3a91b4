"""The WATS report: model, wire formats (WSJF JSON, WSXF XML) and validation."""

from pywats.report.codes import CompOp as CompOp
from pywats.report.codes import ReportType as ReportType
from pywats.report.codes import Result as Result
from pywats.report.codes import Status as Status
from pywats.report.codes import StepGroup as StepGroup
from pywats.report.model import (
    AdditionalData as AdditionalData,
)
from pywats.report.model import (
    AdditionalProperty as AdditionalProperty,
)
from pywats.report.model import Asset as Asset
from pywats.report.model import Attachment as Attachment
from pywats.report.model import BinaryData as BinaryData
from pywats.report.model import BooleanMeasurement as BooleanMeasurement
from pywats.report.model import CallExeInfo as CallExeInfo
from pywats.report.model import Chart as Chart
from pywats.report.model import ChartSeries as ChartSeries
from pywats.report.model import Failure as Failure
from pywats.report.model import LoopInfo as LoopInfo
from pywats.report.model import MessagePopupInfo as MessagePopupInfo
from pywats.report.model import MiscInfo as MiscInfo
from pywats.report.model import NumericMeasurement as NumericMeasurement
from pywats.report.model import Report as Report
from pywats.report.model import SequenceCallInfo as SequenceCallInfo
from pywats.report.model import Step as Step
from pywats.report.model import StepKind as StepKind
from pywats.report.model import StringMeasurement as StringMeasurement
from pywats.report.model import SubUnit as SubUnit
from pywats.report.model import UURInfo as UURInfo
from pywats.report.model import UUTInfo as UUTInfo
from pywats.report.validate import check as check
from pywats.report.validate import validate as validate
