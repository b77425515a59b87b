-- psql with PGOPTIONS='-c statement_timeout=300'
\set VERBOSITY sqlstate
show statement_timeout;
select pg_sleep(10);
select 'still usable' as after;
