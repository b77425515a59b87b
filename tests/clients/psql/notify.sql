-- psql: LISTEN / NOTIFY on its own connection (psql prints notifications
-- after each statement; the PID is normalised by the test)
\set VERBOSITY sqlstate
listen ct_psql_channel;
notify ct_psql_channel, 'hello é';
select pg_notify('ct_psql_channel', 'second') as sent;
unlisten *;
notify ct_psql_channel, 'not received';
select 'done' as done;
