-- psql: COPY FROM STDIN / TO STDOUT (inline data), \copy, a bad row.
\set VERBOSITY sqlstate
\pset null '(null)'
create table c (id int, name text, note text);
copy c from stdin;
1	one	é
2	two	\N
3	three	tab\there
4	four	back\\slash
\.
copy c to stdout;
copy (select id, upper(name), note from c order by id) to stdout with (format csv, header);
select count(*) as rows, count(note) as notes from c;
copy c from stdin;
5	five	x
not-int	six	y
\.
select count(*) as still_four from c;
\copy c from stdin
10	ten	\N
11	eleven	ü
\.
\copy (select id, name, note from c where id >= 10 order by id) to stdout
copy (select g, repeat('x', g % 7) from generate_series(1, 2000) g) to stdout \g /dev/null
select count(*) as rows, sum(id) as ids from c;
drop table c;
