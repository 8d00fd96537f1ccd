"""`grantflow connector run`: a self-hosted connector."""

from __future__ import annotations

from typing import Annotated

import typer

from grantflow.settings import LogFormat

connector_app = typer.Typer(help="Run a self-hosted connector.", no_args_is_help=True)


@connector_app.command("run")
def run(
    url: Annotated[str, typer.Option(envvar="GRANTFLOW_URL", help="Control plane base URL")],
    connector_id: Annotated[
        str, typer.Option("--id", envvar="GRANTFLOW_CONNECTOR_ID", help="Connector id (gfc-…)")
    ],
    token: Annotated[
        str,
        typer.Option(
            envvar="GRANTFLOW_CONNECTOR_TOKEN",
            help="Connector token (prefer the environment variable)",
            show_default=False,
        ),
    ],
    role_arn: Annotated[
        str | None,
        typer.Option(
            envvar="GRANTFLOW_CONNECTOR_ROLE_ARN",
            help="Assume this IAM role first; by default the connector runs as the AWS "
            "identity of its environment (env vars, profile, instance or IRSA role)",
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(envvar="AWS_REGION", help="Region of the AWS clients (default: the SDK's)"),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs run in parallel")] = 4,
    lease_seconds: Annotated[
        int, typer.Option(min=2, max=900, help="How long a job stays ours without news")
    ] = 60,
    log_format: Annotated[
        LogFormat, typer.Option(envvar="GRANTFLOW_LOG_FORMAT", help="json or console")
    ] = LogFormat.JSON,
    log_level: Annotated[
        str, typer.Option(envvar="GRANTFLOW_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR")
    ] = "INFO",
) -> None:
    """Long-poll the control plane for jobs and run them with this machine's AWS credentials.

    Stops cleanly on SIGTERM: in-flight jobs finish or are released back to the queue.
    """
    from grantflow.connector.process import ConnectorOptions, run_forever  # boto3: load on use
    from grantflow.logs import configure_logging

    configure_logging(log_level.upper(), log_format)
    run_forever(
        ConnectorOptions(
            url=url,
            connector_id=connector_id,
            token=token,
            role_arn=role_arn,
            region=region,
            concurrency=concurrency,
            lease_seconds=lease_seconds,
        )
    )
