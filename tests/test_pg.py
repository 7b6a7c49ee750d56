"""The PostgreSQL server the tests of a clinic's shared database run against."""

import psycopg


def test_the_server_takes_a_table_and_gives_the_rows_back(postgresql_url):
    assert postgresql_url.startswith("postgresql://")
    with psycopg.connect(postgresql_url) as conn:
        conn.execute(
            "CREATE TABLE trials (device_id TEXT, seq BIGINT, PRIMARY KEY (device_id, seq))"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO trials VALUES (%s, %s)", [("unit-1", 1), ("unit-1", 2), ("unit-2", 1)]
            )
        conn.commit()
    with psycopg.connect(postgresql_url) as conn:
        rows = conn.execute("SELECT device_id, seq FROM trials ORDER BY device_id, seq").fetchall()
        version = conn.execute("SHOW server_version").fetchone()
    assert rows == [("unit-1", 1), ("unit-1", 2), ("unit-2", 1)]
    assert version is not None and int(version[0].split(".")[0]) >= 13


def test_each_test_gets_a_database_of_its_own(postgresql_url):
    with psycopg.connect(postgresql_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)  # the table of the test above is in another database
