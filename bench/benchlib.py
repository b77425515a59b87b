"""What bench/compare and bench/footprint share: a PostgreSQL 15 primary in a temp dir, and the
configuration of PgBouncer (SCRAM verifier in its auth_file, transaction mode) and of keel."""
import os, shutil, socket, subprocess, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGBIN = "/usr/lib/postgresql/15/bin"
PGB125 = "/opt/pgbouncer-1.25/bin/pgbouncer"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def as_pg(*cmd, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, **kw)


def wait_port(port, deadline=15):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close(); return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def keel_binary():
    """The release build of keel, built first if it is not there (profile-guided: scripts/build-pgo)."""
    path = os.path.join(ROOT, "build/release/keel")
    if not os.path.exists(path):
        subprocess.run([os.path.join(ROOT, "scripts/build-pgo")], check=True)
    return path


def keel_version(binary):
    """`keel --version`: says "profile-guided build" when it is one (what the results were measured on)."""
    return subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def start_postgres(work, scale):
    """initdb + start in work/pg, role and database bench (password benchpass), pgbench -i -s scale.
    Returns (port, the role's SCRAM verifier from pg_authid)."""
    pport = free_port()
    as_pg(f"{PGBIN}/initdb", "-D", f"{work}/pg", "-U", "postgres", "--auth-local=trust",
          "--auth-host=scram-sha-256", stdout=subprocess.DEVNULL)
    with open(f"{work}/pg/postgresql.conf", "a") as f:
        f.write(f"port = {pport}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{work}'\n"
                "max_connections = 300\nshared_buffers = 512MB\nfsync = off\nsynchronous_commit = off\n")
    as_pg(f"{PGBIN}/pg_ctl", "-D", f"{work}/pg", "-l", f"{work}/pg.log", "-w", "start", stdout=subprocess.DEVNULL)
    psql = ["psql", "-X", "-q", "-h", work, "-p", str(pport), "-U", "postgres"]
    as_pg(*psql, "-c", "create role bench login password 'benchpass'", "-c", "create database bench owner bench")
    subprocess.run([f"{PGBIN}/pgbench", "-i", "-q", "-s", str(scale), "-h", "127.0.0.1", "-p", str(pport),
                    "-U", "bench", "bench"], env={**os.environ, "PGPASSWORD": "benchpass"}, check=True,
                   capture_output=True)
    verifier = as_pg(*psql, "-Atc", "select rolpassword from pg_authid where rolname = 'bench'",
                     capture_output=True, text=True).stdout.strip()
    return pport, verifier


def stop_postgres(work):
    subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", f"{work}/pg", "-m", "immediate",
                    "stop"], capture_output=True)


def pgbouncers():
    """(name, binary) of the PgBouncers on this machine: Debian's 1.18, and 1.25.2 when built."""
    found = []
    for name, binary in (("pgbouncer-1.18", shutil.which("pgbouncer")), ("pgbouncer-1.25", PGB125)):
        if binary and os.path.exists(binary):
            found.append((name, binary))
    return found


def write_pgbouncer(work, name, pport, verifier, pool_size, server_host="127.0.0.1"):
    """PgBouncer's directory work/name (owned by postgres) with its strongest set-up: the SCRAM
    verifier in auth_file, transaction mode, no log line per login. server_host is PostgreSQL's
    address or (start_postgres's `work`) its Unix socket's directory. Returns (ini path, port)."""
    port = free_port()
    d = f"{work}/{name}"; os.mkdir(d); shutil.chown(d, "postgres")
    with open(f"{d}/users.txt", "w") as f:
        f.write(f'"bench" "{verifier}"\n')
    # 1.18 has no max_prepared_statements (it fails -M prepared in transaction mode).
    prepared = "" if name == "pgbouncer-1.18" else "max_prepared_statements = 200\n"
    with open(f"{d}/pgbouncer.ini", "w") as f:
        f.write(f"[databases]\nbench = host={server_host} port={pport} dbname=bench\n[pgbouncer]\n"
                f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\n"
                f"auth_file = {d}/users.txt\npool_mode = transaction\ndefault_pool_size = {pool_size}\n"
                f"max_client_conn = 20000\n{prepared}logfile = {d}/log\n"
                # its best: no log line per login and logout (keel logs none either)
                "log_connections = 0\nlog_disconnections = 0\n")
    for fn in os.listdir(d):
        shutil.chown(f"{d}/{fn}", "postgres")
    return f"{d}/pgbouncer.ini", port


def write_keel(work, name, pport, workers, pool_size, server_host="127.0.0.1", io_uring_sends=True,
               io_uring_reads=None):
    """keel's configuration work/name.toml, the same pool and server_host as PgBouncer's. Returns
    (path, port)."""
    port = free_port()
    with open(f"{work}/{name}.toml", "w") as f:
        f.write(f'[keel]\nlisten = "127.0.0.1:{port}"\nworkers = {workers}\nmax_client_conn = 20000\n'
                f'io_uring_sends = {"true" if io_uring_sends else "false"}\n'
                + ('' if io_uring_reads is None else f'io_uring_reads = {"true" if io_uring_reads else "false"}\n') +
                f'[pool]\npool_mode = "transaction"\npool_size = {pool_size}\n'
                f'[databases.bench]\nhost = "{server_host}"\nport = {pport}\ndbname = "bench"\n'
                f'[users.bench]\npassword = "benchpass"\n')
    return f"{work}/{name}.toml", port
