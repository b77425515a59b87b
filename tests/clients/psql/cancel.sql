\set VERBOSITY sqlstate
select pg_sleep(30), :'marker'::text as marker;
select 'not reached' as after;
