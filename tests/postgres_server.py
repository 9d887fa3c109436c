"""A throwaway PostgreSQL server for tests: initdb into a temp dir, a free loopback port.

``postgres`` (the superuser) logs in without a password (trust); every other role must give
its password (scram-sha-256), so a test can put a real password in a store URL. Needs the
server binaries (Debian: ``apt-get install -y postgresql``) and the ``psycopg`` driver (the dev
extra); tests skip with that reason when either is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


def pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    port: int

    def url(self, user: str = "postgres", password: str | None = None, database: str = "postgres") -> str:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        return f"postgresql+psycopg://{auth}@127.0.0.1:{self.port}/{database}"

    def create_role(self, user: str, password: str, database: str) -> str:
        """A login role with ``password`` owning a new ``database``; returns its URL (password in it)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", autocommit=True) as conn:
            role = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password))
            conn.execute(role)
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user)))
        return self.url(user, password, database)


@contextmanager
def postgres_server() -> Iterator[Server]:
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (pg_ctl) on this machine; apt-get install -y postgresql")
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed (pip install 'psycopg[binary]')")
    # initdb refuses to run as root: run the server as 'nobody' in a directory it owns.
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="trainlab-pg-"))
    if as_user:
        shutil.chown(root, "nobody")
    data, port = root / "data", free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *cmd], check=True, capture_output=True, cwd=root)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        (data / "pg_hba.conf").write_text(HBA)
        if as_user:
            shutil.chown(data / "pg_hba.conf", "nobody")
        options = f"-p {port} -k {root} -h 127.0.0.1"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o", options, "start")
    except subprocess.CalledProcessError as err:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {err.stderr.decode(errors='replace')}")
    try:
        yield Server(port)
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
