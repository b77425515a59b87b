-- psql: types, errors, transactions, SQL prepared statements.
-- Runs with search_path set to a schema of its own (PGOPTIONS); only
-- SQLSTATEs of errors are shown.
\set VERBOSITY sqlstate
\pset null '(null)'
select 1 as one, 'Grüße, 世界! 🐘 — ½ ∑' as unicode, null::int as nothing, true as yes;
select array[1, 2, null, 3] as ints,
       array['a', 'b,c', '"q"', null, 'é🐘', '', 'NULL', '{x}']::text[] as texts,
       '{{1,2},{3,4}}'::int[] as two_d;
select '{"a": [1, 2, {"b": null}], "u": "é🐘", "n": 1.5, "t": true}'::jsonb as doc,
       '\x00ff10'::bytea as bytes, 12345678901234567890.000000001 as num;
-- 1 MiB of text and of bytea, there and back
select repeat('abcdefghijklmé✓' || E'\n', 65536) as big \gset
select length(:'big') as big_len, md5(:'big') as big_md5;
select decode(repeat(string_agg(lpad(to_hex(b), 2, '0'), ''), 4096), 'hex') as bin
  from generate_series(0, 255) b \gset
select length(:'bin'::bytea) as bin_len, md5(:'bin'::bytea) as bin_md5;
-- errors
create table t (id int primary key, v text);
insert into t values (1, 'a');
insert into t values (1, 'dup');
select * from no_such_table;
select 1 / 0;
selec 1;
select nope from t;
do $$ begin raise exception 'boom' using errcode = '22023'; end $$;
select count(*) as still_one from t;
-- transactions and savepoints
begin;
insert into t values (2, 'b');
savepoint s1;
insert into t values (3, 'c');
rollback to savepoint s1;
insert into t values (4, 'd');
commit;
begin;
insert into t values (5, 'e');
rollback;
begin;
insert into t values (6, 'f');
select 1 / 0;
select 1;
rollback;
begin;
insert into t values (7, 'g');
savepoint s2;
insert into t values (1, 'dup');
rollback to savepoint s2;
commit;
select id, v from t order by id;
-- an SQL prepared statement executed 300 times
prepare ins(int) as insert into t values ($1, 'p' || $1);
select format('execute ins(%s)', g) from generate_series(100, 399) g \gexec
deallocate ins;
prepare sel(int, text) as select $1 * 2 as doubled, $2 || '!' as shout;
execute sel(21, 'hey');
deallocate sel;
select count(*), sum(id), min(v), max(v) from t where id >= 100;
drop table t;
