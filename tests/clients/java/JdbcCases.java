// pgjdbc (Debian's libpostgresql-jdbc-java) cases for tests/clients/test_jdbc.py.
//
//   java -cp DIR:/usr/share/java/postgresql.jar JdbcCases CASE HOST PORT DATABASE USER PASSWORD UID TIMEOUT_S
//
// prints one line {"observed": {...}} and exits 0, or prints the error and
// exits 1 (3 on timeout). Connections use prepareThreshold=1, so every
// PreparedStatement becomes a named server-side statement (S_n) at once.
// The test data is identical to tests/clients/common.py.

import java.io.StringReader;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.copy.CopyManager;

public class JdbcCases {
    static String host, database, user, password, uid;
    static int port;

    static final String BIG_TEXT = "abcdefghijklm\u00e9\u2713\n".repeat(65536);
    static final byte[] BIG_BYTEA = new byte[1048576];
    static {
        for (int i = 0; i < BIG_BYTEA.length; i++) BIG_BYTEA[i] = (byte) (i % 256);
    }
    static final String UNICODE =
        "Gr\u00fc\u00dfe, \u4e16\u754c! \uD83D\uDC18 \u2014 \u00bd \u2211 tab\there back\\slash 'q' \"dq\"";
    static final Integer[] INT_ARRAY = {1, 2, null, 3};
    static final String[] TEXT_ARRAY = {"a", "b,c", "\"q\"", null, "\u00e9\uD83D\uDC18", "", "NULL", "{x}"};
    static final Integer[][] INT_ARRAY_2D = {{1, 2}, {3, 4}};
    static final String JSON_DOC = "{\"a\": [1, 2, {\"b\": null}], \"u\": \"\u00e9\uD83D\uDC18\", \"n\": 1.5, \"t\": true}";
    static final String ECHO_TEXT = "O'Reilly \"dq\" ; -- not a comment $1";
    static final int PREPARED_EXECUTIONS = 300, CONCURRENT_CLIENTS = 50, COPY_ROWS = 1000;

    // ------------------------------------------------------------------ helpers

    static Connection connect(String... extra) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        p.setProperty("prepareThreshold", "1");
        p.setProperty("connectTimeout", "10");
        for (int i = 0; i + 1 < extra.length; i += 2) p.setProperty(extra[i], extra[i + 1]);
        String db = p.getProperty("_database", database);
        p.remove("_database");
        return DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/" + db, p);
    }

    interface Body { void run() throws Exception; }

    /** The SQLSTATE the body fails with, or null. */
    static String state(Body b) throws Exception {
        try {
            b.run();
        } catch (SQLException e) {
            return e.getSQLState();
        }
        return null;
    }

    static Object value(ResultSet rs, int col) throws SQLException {
        Object o = rs.getObject(col);
        if (o instanceof Array) return arrayValue(((Array) o).getArray());
        if (o instanceof byte[]) return o;
        if (o != null && o.getClass().getName().equals("org.postgresql.util.PGobject")) return rs.getString(col);
        return o;
    }

    static Object arrayValue(Object a) {
        if (a instanceof Object[]) {
            List<Object> out = new ArrayList<>();
            for (Object x : (Object[]) a) out.add(arrayValue(x));
            return out;
        }
        return a;
    }

    static List<List<Object>> rows(PreparedStatement ps) throws SQLException {
        List<List<Object>> out = new ArrayList<>();
        try (ResultSet rs = ps.executeQuery()) {
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                List<Object> row = new ArrayList<>();
                for (int i = 1; i <= n; i++) row.add(value(rs, i));
                out.add(row);
            }
        }
        return out;
    }

    static PreparedStatement ps(Connection c, String sql, Object... params) throws SQLException {
        PreparedStatement ps = c.prepareStatement(sql);
        bind(ps, params);
        return ps;
    }

    static void bind(PreparedStatement ps, Object... params) throws SQLException {
        for (int i = 0; i < params.length; i++) {
            Object p = params[i];
            if (p instanceof Integer) ps.setInt(i + 1, (Integer) p);
            else if (p instanceof String) ps.setString(i + 1, (String) p);
            else ps.setObject(i + 1, p);
        }
    }

    static List<List<Object>> query(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = ps(c, sql, params)) {
            return rows(ps);
        }
    }

    static Object q1(Connection c, String sql, Object... params) throws SQLException {
        return query(c, sql, params).get(0).get(0);
    }

    static void exec(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = ps(c, sql, params)) {
            ps.execute();
        }
    }

    static List<Object> ids(Connection c, String t) throws SQLException {
        List<Object> out = new ArrayList<>();
        for (List<Object> r : query(c, "select id from " + t + " order by id")) out.add(r.get(0));
        return out;
    }

    static String describe(Throwable e) {
        return (e instanceof SQLException ? "SQLSTATE " + ((SQLException) e).getSQLState() + " " : "") + e;
    }

    static String md5(byte[] b) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (byte x : MessageDigest.getInstance("MD5").digest(b)) sb.append(String.format("%02x", x));
        return sb.toString();
    }

    static String md5(String s) throws Exception {
        return md5(s.getBytes(StandardCharsets.UTF_8));
    }

    static String copyText() {
        StringBuilder sb = new StringBuilder();
        for (int i = 1; i <= COPY_ROWS; i++) {
            String note = i % 10 == 0 ? "\\N" : "note " + i + " \u00e9";
            sb.append(i).append('\t').append("name_").append(i).append('\t').append(note).append('\n');
        }
        return sb.toString();
    }

    static void waitRunning(Connection watcher, String marker, long timeoutMs) throws Exception {
        long end = System.currentTimeMillis() + timeoutMs;
        while (true) {
            Object n = q1(watcher, "select count(*)::int from pg_stat_activity where state = 'active' "
                + "and query like ? and wait_event = 'PgSleep' and pid <> pg_backend_pid()", "%" + marker + "%");
            if (((Integer) n) > 0) return;
            if (System.currentTimeMillis() > end) throw new RuntimeException("timed out waiting for " + marker);
            Thread.sleep(20);
        }
    }

    // -------------------------------------------------------------------- cases

    static Map<String, Object> case_login() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        try (Connection c = connect()) {
            o.put("select_one", q1(c, "select 1"));
            o.put("current_user", q1(c, "select current_user"));
            o.put("server_version", c.unwrap(PGConnection.class).getParameterStatus("server_version"));
        }
        o.put("wrong_password", state(() -> connect("password", "wrong").close()));
        o.put("unknown_database", state(() -> connect("_database", "ct_no_such_db").close()));
        return o;
    }

    static Map<String, Object> case_params() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        try (Connection c = connect()) {
            o.put("sum", q1(c, "select ?::int + ?::int", 2, 3));
            o.put("echo_text", q1(c, "select ?::text", ECHO_TEXT));
            o.put("range_count", q1(c, "select count(*)::int from pgbench_accounts where aid between ? and ?", 10, 19));
            o.put("bool", q1(c, "select ?::boolean", true));
            o.put("float", q1(c, "select ?::float8", 1.5d));
            o.put("numeric_text", q1(c, "select (?::numeric)::text", new BigDecimal("12345678901234567890.000000001")));
            o.put("bigint_text", q1(c, "select (?::bigint)::text", 9007199254740993L));
            try (PreparedStatement ps = c.prepareStatement("select ?::int is null")) {
                ps.setNull(1, Types.INTEGER);
                o.put("null_is_null", rows(ps).get(0).get(0));
            }
            o.put("rows", query(c, "select g, 'r' || g from generate_series(1, ?) g order by g", 3));
        }
        return o;
    }

    static Map<String, Object> case_prepared() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        try (Connection c = connect();
             PreparedStatement st = c.prepareStatement("select ?::int * 2, ?::text || '!'");
             PreparedStatement div = c.prepareStatement("select 10 / ?::int")) {
            int mismatches = 0;
            for (int i = 1; i <= PREPARED_EXECUTIONS; i++) {
                bind(st, i, "v" + i);
                if (!rows(st).equals(List.of(List.of(2 * i, "v" + i + "!")))) mismatches++;
            }
            c.setAutoCommit(false);
            bind(st, 1000, "tx");
            o.put("in_tx", rows(st).get(0));
            c.commit();
            c.setAutoCommit(true);
            o.put("executions", PREPARED_EXECUTIONS);
            o.put("mismatches", mismatches);
            o.put("div0", state(() -> { bind(div, 0); rows(div); }));
            bind(div, 5);
            o.put("after_error", rows(div).get(0).get(0));
            bind(st, 2, "again");
            o.put("reuse_after_error", rows(st).get(0));
        }
        return o;
    }

    static Map<String, Object> case_transactions() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        String t = "ct_tx_" + uid;
        String ins = "insert into " + t + " values (?, ?)";
        try (Connection c = connect()) {
            exec(c, "create table " + t + " (id int primary key, v text)");
            c.setAutoCommit(false);
            exec(c, ins, 1, "a");
            Savepoint s1 = c.setSavepoint("s1");
            exec(c, ins, 2, "b");
            c.rollback(s1);
            exec(c, ins, 3, "c");
            c.commit();
            o.put("after_commit", ids(c, t));
            c.commit();
            exec(c, ins, 4, "d");
            c.rollback();
            o.put("after_rollback", ids(c, t));
            c.commit();
            exec(c, ins, 5, "e");
            o.put("div0", state(() -> query(c, "select 1 / ?::int", 0)));
            o.put("in_failed", state(() -> query(c, "select 1")));
            c.rollback();
            o.put("after_failed", ids(c, t));
            c.commit();
            exec(c, ins, 6, "f");
            Savepoint s2 = c.setSavepoint("s2");
            o.put("savepoint_dup", state(() -> exec(c, ins, 1, "dup")));
            c.rollback(s2);
            c.commit();
            o.put("final", ids(c, t));
            c.setAutoCommit(true);
            exec(c, "drop table " + t);
        }
        return o;
    }

    static Map<String, Object> case_errors() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        String t = "ct_err_" + uid;
        try (Connection c = connect(); Statement s = c.createStatement()) {
            s.execute("create table " + t + " (id int primary key)");
            s.execute("insert into " + t + " values (1)");
            o.put("unique", state(() -> exec(c, "insert into " + t + " values (?)", 1)));
            o.put("undefined_table", state(() -> s.executeQuery("select * from ct_missing_" + uid)));
            o.put("div0", state(() -> query(c, "select 1 / ?::int", 0)));
            o.put("syntax", state(() -> s.execute("selec 1")));
            o.put("undefined_column", state(() -> s.executeQuery("select nope from " + t)));
            o.put("raised", state(() -> s.execute("do $$ begin raise exception 'boom' using errcode = '22023'; end $$")));
            o.put("after", q1(c, "select 1"));
            s.execute("drop table " + t);
        }
        return o;
    }

    static Map<String, Object> case_types() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        String t = "ct_types_" + uid;
        try (Connection c = connect()) {
            try (PreparedStatement ps = c.prepareStatement("select ?::text, ?::int")) {
                ps.setNull(1, Types.VARCHAR);
                ps.setNull(2, Types.INTEGER);
                List<Object> r = rows(ps).get(0);
                o.put("null_text", r.get(0));
                o.put("null_int", r.get(1));
            }
            o.put("unicode", q1(c, "select ?::text", UNICODE));
            List<Object> big = query(c, "select ?::text, md5(?::text)", BIG_TEXT, BIG_TEXT).get(0);
            o.put("big_text_len", ((String) big.get(0)).length());
            o.put("big_text_md5", md5((String) big.get(0)));
            o.put("big_text_server_md5", big.get(1));
            List<Object> by = query(c, "select ?::bytea, md5(?::bytea)", BIG_BYTEA, BIG_BYTEA).get(0);
            o.put("bytea_len", ((byte[]) by.get(0)).length);
            o.put("bytea_md5", md5((byte[]) by.get(0)));
            o.put("bytea_server_md5", by.get(1));
            o.put("int_array", q1(c, "select ?::int[]", c.createArrayOf("int4", INT_ARRAY)));
            o.put("text_array", q1(c, "select ?::text[]", c.createArrayOf("text", TEXT_ARRAY)));
            o.put("int_array_2d", q1(c, "select ?::int[]", c.createArrayOf("int4", INT_ARRAY_2D)));
            // json comes back as text (a PGobject): test_jdbc.py parses it
            o.put("json", q1(c, "select ?::json", JSON_DOC));
            o.put("jsonb", q1(c, "select ?::jsonb", JSON_DOC));
            exec(c, "create table " + t + " (t text, b bytea, u text, a text[], j jsonb)");
            exec(c, "insert into " + t + " values (?, ?, ?, ?, ?::jsonb)",
                BIG_TEXT, BIG_BYTEA, UNICODE, c.createArrayOf("text", TEXT_ARRAY), JSON_DOC);
            List<Object> row = query(c, "select t, b, u, a, j from " + t).get(0);
            o.put("table_text_md5", md5((String) row.get(0)));
            o.put("table_bytea_md5", md5((byte[]) row.get(1)));
            o.put("table_unicode", row.get(2));
            o.put("table_text_array", row.get(3));
            o.put("table_jsonb", row.get(4));
            exec(c, "drop table " + t);
        }
        return o;
    }

    static Map<String, Object> case_copy() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        String t = "ct_copy_" + uid;
        try (Connection c = connect()) {
            exec(c, "create table " + t + " (id int, name text, note text)");
            CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
            long n = cm.copyIn("copy " + t + " (id, name, note) from stdin", new StringReader(copyText()));
            if (n != COPY_ROWS) throw new RuntimeException("copyIn reported " + n + " rows");
            StringWriter out = new StringWriter();
            cm.copyOut("copy (select id, name, note from " + t + " order by id) to stdout", out);
            List<Object> row = query(c, "select count(*)::int, count(*) filter (where note is null)::int, "
                + "sum(id)::int from " + t).get(0);
            o.put("count", row.get(0));
            o.put("nulls", row.get(1));
            o.put("sum", row.get(2));
            o.put("copy_out_md5", md5(out.toString()));
            o.put("bad_row", state(() -> cm.copyIn("copy " + t + " from stdin",
                new StringReader("1\tx\t\\N\nnot-int\ty\t\\N\n"))));
            o.put("after", q1(c, "select 1"));
            exec(c, "drop table " + t);
        }
        return o;
    }

    static Map<String, Object> case_concurrency() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        String t = "ct_conc_" + uid;
        try (Connection setup = connect()) {
            exec(setup, "create table " + t + " (id int primary key)");
            ExecutorService pool = Executors.newFixedThreadPool(CONCURRENT_CLIENTS);
            // first all 50 connect (and log in) at once, then all work at once
            List<Future<Connection>> connecting = new ArrayList<>();
            for (int k = 0; k < CONCURRENT_CLIENTS; k++) connecting.add(pool.submit(() -> connect()));
            List<Connection> conns = new ArrayList<>();
            List<String> failures = new ArrayList<>();
            for (Future<Connection> f : connecting) {
                try {
                    conns.add(f.get(90, TimeUnit.SECONDS));
                } catch (java.util.concurrent.ExecutionException e) {
                    failures.add("connect: " + describe(e.getCause()));
                }
            }
            List<Future<Boolean>> results = new ArrayList<>();
            for (int k = 0; k < conns.size(); k++) {
                final int i = k;
                final Connection c = conns.get(k);
                results.add(pool.submit(() -> {
                    if (!Integer.valueOf(i).equals(q1(c, "select ?::int", i))) return false;
                    c.setAutoCommit(false);
                    exec(c, "insert into " + t + " values (?)", i);
                    c.commit();
                    c.setAutoCommit(true);
                    return Integer.valueOf(1).equals(q1(c, "select count(*)::int from " + t + " where id = ?", i));
                }));
            }
            int ok = 0;
            for (Future<Boolean> f : results) {
                try {
                    if (f.get(90, TimeUnit.SECONDS)) ok++;
                } catch (java.util.concurrent.ExecutionException e) {
                    failures.add("work: " + describe(e.getCause()));
                }
            }
            for (Connection c : conns) c.close();
            pool.shutdown();
            if (!failures.isEmpty())
                throw new RuntimeException(failures.size() + " of " + CONCURRENT_CLIENTS + " clients failed: " + failures);
            o.put("clients", CONCURRENT_CLIENTS);
            o.put("ok", ok);
            o.put("rows", q1(setup, "select count(*)::int from " + t));
            exec(setup, "drop table " + t);
        }
        return o;
    }

    static Map<String, Object> case_cancel() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        String marker = "ct_cancel_" + uid;
        try (Connection c = connect(); Connection watcher = connect(); Statement s = c.createStatement()) {
            AtomicReference<Exception> err = new AtomicReference<>();
            Thread canceller = new Thread(() -> {
                try {
                    waitRunning(watcher, marker, 15000);
                    s.cancel();     // a CancelRequest with this connection's key
                } catch (Exception e) {
                    err.set(e);
                }
            });
            long start = System.currentTimeMillis();
            canceller.start();
            o.put("sqlstate", state(() -> s.execute("select pg_sleep(30), '" + marker + "'::text")));
            canceller.join(20000);
            if (err.get() != null) throw err.get();
            o.put("quick", System.currentTimeMillis() - start < 15000);
            o.put("after", q1(c, "select 1"));
        }
        return o;
    }

    static Map<String, Object> case_statement_timeout() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        try (Connection c = connect("options", "-c statement_timeout=300"); Connection other = connect();
             Statement s = c.createStatement()) {
            o.put("show", q1(c, "show statement_timeout"));
            o.put("sqlstate", state(() -> s.execute("select pg_sleep(10)")));
            o.put("after", q1(c, "select 1"));
            o.put("other_show", q1(other, "show statement_timeout"));
        }
        return o;
    }

    static Map<String, Object> case_notify() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        String ch = "ct_ch_" + uid;
        try (Connection listener = connect(); Connection notifier = connect();
             Statement ls = listener.createStatement(); Statement ns = notifier.createStatement()) {
            ls.execute("listen \"" + ch + "\"");
            ns.execute("notify \"" + ch + "\", 'hello \u00e9'");
            q1(notifier, "select pg_notify(?, ?)", ch, "second");
            List<PGNotification> got = new ArrayList<>();
            long end = System.currentTimeMillis() + 10000;
            PGConnection pl = listener.unwrap(PGConnection.class);
            while (got.size() < 2 && System.currentTimeMillis() < end) {
                PGNotification[] ns2 = pl.getNotifications((int) Math.max(1, end - System.currentTimeMillis()));
                if (ns2 != null) got.addAll(Arrays.asList(ns2));
            }
            ls.execute("unlisten \"" + ch + "\"");
            boolean channelOk = true;
            List<Object> payloads = new ArrayList<>();
            for (PGNotification n : got) {
                channelOk &= n.getName().equals(ch);
                payloads.add(n.getParameter());
            }
            o.put("channel_ok", channelOk);
            o.put("payloads", payloads);
        }
        return o;
    }

    /** JDBC only: a batch of inserts (pipelined Bind/Execute, one Sync) and
     *  a result read 10 rows at a time (a portal suspended and resumed). */
    static Map<String, Object> case_batch_fetch() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        String t = "ct_batch_" + uid;
        try (Connection c = connect()) {
            exec(c, "create table " + t + " (id int primary key, v text)");
            try (PreparedStatement ps = c.prepareStatement("insert into " + t + " values (?, ?)")) {
                for (int i = 0; i < 100; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "v" + i);
                    ps.addBatch();
                }
                int total = 0;
                for (int n : ps.executeBatch()) total += n;
                o.put("batch_rows", total);
            }
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("select id from " + t + " where id >= ? order by id")) {
                ps.setFetchSize(10);
                ps.setInt(1, 5);
                int n = 0;
                long sum = 0;
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        n++;
                        sum += rs.getInt(1);
                    }
                }
                o.put("fetched", n);
                o.put("fetched_sum", sum);
            }
            c.commit();
            c.setAutoCommit(true);
            exec(c, "drop table " + t);
        }
        return o;
    }

    // --------------------------------------------------------------------- JSON

    static void json(StringBuilder sb, Object v) {
        if (v == null) sb.append("null");
        else if (v instanceof String) {
            sb.append('"');
            for (char ch : ((String) v).toCharArray()) {
                switch (ch) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    default:
                        if (ch < 0x20 || ch > 0x7e) sb.append(String.format("\\u%04x", (int) ch));
                        else sb.append(ch);
                }
            }
            sb.append('"');
        } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long) sb.append(v);
        else if (v instanceof Double || v instanceof Float) sb.append(v);
        else if (v instanceof Number) sb.append('"').append(v).append('"');
        else if (v instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) sb.append(',');
                first = false;
                json(sb, e.getKey().toString());
                sb.append(':');
                json(sb, e.getValue());
            }
            sb.append('}');
        } else if (v instanceof List) {
            sb.append('[');
            boolean first = true;
            for (Object x : (List<?>) v) {
                if (!first) sb.append(',');
                first = false;
                json(sb, x);
            }
            sb.append(']');
        } else if (v instanceof byte[]) json(sb, "<" + ((byte[]) v).length + " bytes>");
        else json(sb, v.toString());
    }

    public static void main(String[] args) throws Exception {
        String name = args[0];
        host = args[1];
        port = Integer.parseInt(args[2]);
        database = args[3];
        user = args[4];
        password = args[5];
        uid = args[6];
        long timeoutMs = Long.parseLong(args[7]) * 1000;
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(timeoutMs);
                System.err.println("case " + name + " did not finish within " + timeoutMs + " ms");
                Runtime.getRuntime().halt(3);
            } catch (InterruptedException e) {
                // done in time
            }
        });
        watchdog.setDaemon(true);
        watchdog.start();
        Map<String, Object> observed;
        try {
            observed = (Map<String, Object>) JdbcCases.class.getDeclaredMethod("case_" + name).invoke(null);
        } catch (NoSuchMethodException e) {
            System.err.println("unknown case " + name);
            System.exit(2);
            return;
        } catch (java.lang.reflect.InvocationTargetException e) {
            Throwable cause = e.getCause();
            System.err.println("case " + name + " failed:");
            cause.printStackTrace();
            if (cause instanceof SQLException) System.err.println("SQLSTATE: " + ((SQLException) cause).getSQLState());
            System.exit(1);
            return;
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("observed", observed);
        StringBuilder sb = new StringBuilder();
        json(sb, out);
        System.out.println(sb);
        System.out.flush();
        System.exit(0);
    }
}
