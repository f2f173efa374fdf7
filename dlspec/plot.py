"""The run directory's curve.svg and ``evaluate --picture``'s confusion matrix: drawn by
dlspec/report/charts.py, the one chart module (kept as this import path)."""

from dlspec.report.charts import confusion_svg, training_curve_svg

__all__ = ["confusion_svg", "training_curve_svg"]
