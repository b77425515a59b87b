-- psql: a notification from another connection reaches this one. The test
-- sends it while this script waits in \! (until the test opens $CT_FIFO), and
-- psql prints it after the next statement.
\set VERBOSITY sqlstate
listen ct_psql_other;
select 'listening' as state;
\! cat "$CT_FIFO" > /dev/null 2>&1
select 'after' as state;
unlisten *;
