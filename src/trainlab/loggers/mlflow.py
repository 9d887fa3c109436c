"""``mlflow``: params, metrics and the report through MLflow's own client (the ``mlflow`` extra).

At the start an MLflow run (experiment: ``[log] mlflow_experiment``, else the run's group,
else its name; tag ``trainlab.run_id``) with the flattened config as params; each batch of the
store's rows as ``log_batch`` calls (MLflow's batch API, at most 1000 metrics each); at the end
the final metrics as ``final/<key>``, the run's HTML report and ``metrics.csv`` (when the csv
logger is on) as artifacts, and the status (completed -> FINISHED, interrupted -> KILLED,
else FAILED). A resumed run continues the MLflow run with its tag; MLflow keeps every logged
value, so steps between the checkpoint and the interruption appear twice there (the store and
the other mirrors drop them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from trainlab.loggers._base import Logger, Row, final_numbers, flat_params

STATUS = {"completed": "FINISHED", "interrupted": "KILLED", "pruned": "FINISHED"}
_BATCH = 1000  # MLflow's limit of metrics per log_batch call


class MLflowLogger(Logger):
    name = "mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None):
        self.tracking_uri, self.experiment = tracking_uri, experiment

    def open(self, trainer) -> None:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        self._metric = Metric
        self._pending: list = []
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        name = self.experiment or trainer.group or trainer.config.name
        found = self.client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(name)
        previous = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`trainlab.run_id` = '{trainer.run_id}'"
        )
        if previous:  # a resumed run
            self.mlflow_run_id = previous[0].info.run_id
            self.client.update_run(self.mlflow_run_id, status="RUNNING")
            return
        run = self.client.create_run(
            experiment_id, run_name=trainer.config.name, tags={"trainlab.run_id": trainer.run_id}
        )
        self.mlflow_run_id = run.info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in flat_params(trainer.config.to_dict()).items()]
        for i in range(0, len(params), 100):  # MLflow's limit of params per call
            self.client.log_batch(self.mlflow_run_id, params=params[i : i + 100])

    def write(self, rows: Sequence[Row]) -> None:
        # MLflow's asynchronous logging: the batch is queued and written by MLflow's own
        # thread, so the training loop does not wait for the tracking store.
        now = int(time.time() * 1000)
        metrics = [self._metric(key, value, now, step) for step, key, value in rows if value is not None]
        for i in range(0, len(metrics), _BATCH):
            self._pending.append(
                self.client.log_batch(self.mlflow_run_id, metrics=metrics[i : i + _BATCH], synchronous=False)
            )

    def wait(self) -> None:
        """Block until every queued batch is in the tracking store."""
        for operation in self._pending:
            operation.wait()
        self._pending = []

    def close(self, trainer, result) -> None:
        from trainlab.report.build import write_report

        self.write([(trainer.step, f"final/{k}", v) for k, v in final_numbers(result.final).items()])
        self.wait()
        report = write_report([trainer.run_id], trainer.run_dir / "report.html", trainer.store)
        self.client.log_artifact(self.mlflow_run_id, str(report))
        csv = trainer.run_dir / "metrics.csv"
        if csv.exists():
            self.client.log_artifact(self.mlflow_run_id, str(csv))
        self.client.set_terminated(self.mlflow_run_id, status=STATUS.get(result.status, "FAILED"))
