"""The private PostgreSQL the cluster tests run against: its own folder, port and
socket, never the machine's 5432, and never running as root."""
import psycopg


def test_the_private_server_is_ours_on_a_free_port(pg_db):
    server, name = pg_db
    assert server.port != 5432
    with psycopg.connect(server.superuser_url(name)) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
        socket_dir = conn.execute("SHOW unix_socket_directories").fetchone()[0]
        assert data_dir == str(server.data)
        assert socket_dir == str(server.socket_dir)
        assert conn.execute("SELECT current_database()").fetchone()[0] == name
    # The server process does not run as root (PostgreSQL refuses to, and should).
    import os
    assert os.stat("/proc/%d" % server.proc.pid).st_uid != 0
