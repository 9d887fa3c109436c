"""Credentials in store URLs are masked wherever trainlab shows or stores text (issue 21).

The expected strings are written out by hand from the rule: the password after ``user:`` and
the value of every secret query key become ``***``; nothing else changes.
"""

from __future__ import annotations

import socket

import pytest

from trainlab.credentials import check_url, display_url, redact, url_secrets
from trainlab.errors import ConfigError


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql+psycopg://alice:s3cret@db.org:5432/lab", "postgresql+psycopg://alice:***@db.org:5432/lab"),
        ("postgresql://alice:p%40ss%2Fw@h/db", "postgresql://alice:***@h/db"),  # percent-encoded password
        ("postgresql://al@h/db?sslmode=require&password=s3cret", "postgresql://al@h/db?password=***&sslmode=require"),
        ("postgresql:///lab?host=/run/pg&sslpassword=k3y", "postgresql:///lab?host=%2Frun%2Fpg&sslpassword=***"),
        ("mysql+pymysql://bob:pw@h/db?token=abc&charset=utf8", "mysql+pymysql://bob:***@h/db?charset=utf8&token=***"),
        ("postgresql://u:p@ss@h/d", "postgresql://u:***@h/d"),  # an unencoded '@': masked up to the host
        ("post gres://alice:s3cret@h/db", "post gres://alice:***@h/db"),  # SQLAlchemy cannot parse it
        # Nothing to hide: shown exactly as written.
        ("postgresql+psycopg://bob@h:5/db?sslmode=require", "postgresql+psycopg://bob@h:5/db?sslmode=require"),
        ("sqlite:////home/a@b/runs/trainlab.db", "sqlite:////home/a@b/runs/trainlab.db"),
        ("runs/trainlab.db", "runs/trainlab.db"),
    ],
)
def test_display_url_masks_the_password_and_secret_query_values(url, shown):
    assert display_url(url) == shown


def test_url_secrets_lists_every_credential():
    assert url_secrets("postgresql://a:s3cret@h/d?password=x2&sslmode=require") == ["s3cret", "x2"]
    assert url_secrets("postgresql://a:p%40ss@h/d") == ["p%40ss", "p@ss"]
    assert url_secrets("postgresql://a@h/d") == [] and url_secrets("runs/x.db") == [] and url_secrets(None) == []


def test_redact_masks_urls_connection_strings_and_the_known_password():
    url = "postgresql+psycopg://alice:s3cret@h/lab"
    text = f"could not open '{url}': connection failed (dsn: host=h password=s3cret user=alice); pw was s3cret."
    assert redact(text, url) == (
        "could not open 'postgresql+psycopg://alice:***@h/lab': connection failed "
        "(dsn: host=h password=*** user=alice); pw was ***."
    )
    # Without the URL: any user:password@ and any password=… pair, quoted or not.
    assert redact("see mysql://root:hunter2@db/x and password='a b\\'c' sslmode=require") == (
        "see mysql://root:***@db/x and password=*** sslmode=require"
    )
    # A one-letter password masks the token, not the letter in every word.
    assert redact("cannot connect: a is wrong", "postgresql://u:a@h/d") == "cannot connect: *** is wrong"
    # The percent-encoded form of the password is masked too.
    assert redact("dsn p%40ss and p@ss", "postgresql://u:p%40ss@h/d") == "dsn *** and ***"


def test_a_password_with_an_unencoded_at_sign_is_refused_without_showing_it():
    with pytest.raises(ConfigError) as err:
        check_url("postgresql+psycopg://alice:pa@ss@db/lab")
    message = str(err.value)
    assert "%40" in message and "postgresql+psycopg://alice:***@db/lab" in message
    assert "pa@ss" not in message and "ss@db" not in message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_store_errors_never_show_the_password():
    pytest.importorskip("psycopg")
    from trainlab.store import Store
    from trainlab.tune.storage import StudyStorage

    port = _closed_port()  # nothing listens there: the connection is refused at once
    url = f"postgresql+psycopg://alice:s3cret-Xq9@127.0.0.1:{port}/lab?password=s3cret-Xq9"
    for opener in (Store, StudyStorage):
        with pytest.raises(ConfigError) as err:
            opener(url)
        message = str(err.value)
        assert "s3cret-Xq9" not in message, message
        assert f"postgresql+psycopg://alice:***@127.0.0.1:{port}/lab?password=***" in message


def test_messages_stored_with_a_run_are_redacted(store):
    url = "postgresql+psycopg://alice:s3cret-Xq9@db/lab"
    run_id = store.create_run("r", {"seed": 0})
    store.finish_run(run_id, "failed", final={}, message=f"OperationalError: could not reach {url}")
    assert store.get_run(run_id).message == "OperationalError: could not reach postgresql+psycopg://alice:***@db/lab"


def test_help_and_cli_errors_never_show_the_password(monkeypatch, capsys):
    from typer.testing import CliRunner

    from trainlab import cli

    secret = "s3cret-Xq9"
    monkeypatch.setenv("TRAINLAB_STORE", f"postgresql+psycopg://alice:{secret}@127.0.0.1:{_closed_port()}/lab")
    runner = CliRunner()
    names = [c.name or c.callback.__name__ for c in cli.app.registered_commands]
    assert {"run", "runs", "compare", "tune", "studies", "report"} <= set(names)
    for name in names:
        result = runner.invoke(cli.app, [name, "--help"])
        assert result.exit_code == 0 and secret not in result.output, name
    # An error that quotes the URL (SQLAlchemy cannot parse it) is one line with the password masked.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["runs", "--store", f"post gres://alice:{secret}@h/db"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert secret not in err and "alice:***@h/db" in err and "Traceback" not in err


def test_an_mlflow_uri_with_a_password_is_refused_without_showing_it():
    """``[log] mlflow_uri`` is stored with the run's config: a password there is refused, and the
    refusal names the environment variables MLflow reads instead."""
    from trainlab.train.config import load_config

    with pytest.raises(ConfigError) as err:
        load_config({"log": {"to": ["mlflow"], "mlflow_uri": "https://bob:s3cret@mlflow.example.com"}})
    message = str(err.value)
    assert "log.mlflow_uri" in message and "MLFLOW_TRACKING_PASSWORD" in message and "s3cret" not in message
    assert (
        load_config({"log": {"mlflow_uri": "https://mlflow.example.com"}}).log.mlflow_uri
        == "https://mlflow.example.com"
    )
