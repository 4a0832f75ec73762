"""Document understanding on SEC-native labels: NER, extractive QA, relations, classification, summarization.

Pure library (no dagster). ``load_predictor(task)`` serves the latest published model of a task;
``train.train_task`` (or ``python -m finsec_assets.ml.understanding.train``) trains and judges one task.
"""

from .predict import PREDICTOR_TASKS, load_predictor

__all__ = ["PREDICTOR_TASKS", "load_predictor"]
