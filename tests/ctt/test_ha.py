"""ctt.ha's connection strings (unit, no cluster: tests/ops/test_failover.py drives a real one)."""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from ctt.config import with_role
from ctt.ha import Cluster, Member, on_member


def test_the_cluster_url_names_both_nodes_and_wants_the_writable_one() -> None:
    info = conninfo_to_dict(with_role(Cluster(Path("/x"), (6433, 6434)).url("ctt"), "ctt_ingest", "pw"))
    assert (info["host"], info["port"], info["dbname"]) == ("127.0.0.1,127.0.0.1", "6433,6434", "ctt")
    assert (info["target_session_attrs"], info["user"]) == ("read-write", "ctt_ingest")


def test_one_member_alone_whatever_its_role() -> None:
    url = with_role(Cluster(Path("/x"), (6433, 6434)).url("ctt"), "ctt_admin", "pw")
    info = conninfo_to_dict(on_member(url, Member("node2", "sync_standby", "running", 6434)))
    assert (info["host"], info["port"], info["target_session_attrs"]) == ("127.0.0.1", "6434", "any")
    assert (info["user"], info["password"], info["dbname"]) == ("ctt_admin", "pw", "ctt")
