"""Static checks of the compose deployment (deploy/compose), without Docker.

scripts/check-compose runs this after "docker compose config -q" when the
compose tool is there, and alone when it is not. It reads compose.yaml with
the variables of .env.example substituted as compose substitutes them, and
checks what "docker compose config" does not know about Strata:

  - the variables: every ${VAR} of compose.yaml is in .env.example, and every
    entry there is used; every STRATA_ variable, there or in a service's
    environment, is a setting of internal/config/config.go;
  - the services: an image or a build context (that exists); depends_on
    naming services that exist, with a valid condition, service_healthy only
    on a service with a health check, service_completed_successfully only on
    a one-shot service (restart "no"); every other service with a health check
    and a restart policy; named volumes declared; no two services publishing
    the same host port, and a replicated service publishing a port range
    with a port for each replica;
  - Strata's services: a one-shot service runs writer migrate and writer
    schemas apply, and the writers and projectors wait for it; the database
    and brokers they name are services of the file, PostgreSQL's user,
    password and database are the URL's, and Kafka advertises the address
    they use, in KRaft mode, with one replica of its internal topics; a
    served API (writer serve, projector run) has tokens, or
    STRATA_ALLOW_UNAUTHENTICATED=true, when it does not listen on a loopback
    address (it refuses to start otherwise), its health check asks /readyz
    on its STRATA_HTTP_ADDR port, and its published ports target that port;
    writers and projectors agree on the store and the topics; two writers
    serve (one relays, one stands by) and two or more projectors run;
  - the image: deploy/compose/Dockerfile builds from the golang image of
    go.mod's Go version, static (CGO_ENABLED=0) and -trimpath, downloads the
    modules in a layer before copying the sources, and its final stage runs
    as a non-root user and has wget when the health checks use it; the root
    .dockerignore lets in every directory the binaries are built from (go
    list -deps), their embedded files, the schemas and the projections, and
    leaves out .git, bin/ and .data/.

Usage: check_compose.py REPO_ROOT. Exits 1 listing every problem found.
"""

import os
import re
import subprocess
import sys
from urllib.parse import urlsplit

import yaml

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
COMPOSE_DIR = os.path.join(ROOT, "deploy", "compose")
COMPOSE_FILE = os.path.join(COMPOSE_DIR, "compose.yaml")
ENV_EXAMPLE = os.path.join(COMPOSE_DIR, ".env.example")
DOCKERFILE = os.path.join(COMPOSE_DIR, "Dockerfile")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")
CONFIG_GO = os.path.join(ROOT, "internal", "config", "config.go")

problems = []
checks = 0


def problem(msg):
    problems.append(msg)


def check(ok, msg):
    global checks
    checks += 1
    if not ok:
        problem(msg)
    return ok


def rel(path):
    return os.path.relpath(path, ROOT)


# --- The settings Strata knows -------------------------------------------


def strata_settings():
    with open(CONFIG_GO) as f:
        src = f.read()
    names = set(re.findall(r'^\s*\w+\s+Setting\s*=\s*"(STRATA_[A-Z0-9_]+)"', src, re.M))
    if not names:
        problem(f"{rel(CONFIG_GO)}: found no Setting constants: the check cannot read the settings table")
    return names


# --- .env.example and compose's variable substitution --------------------


def read_env_file(path):
    env = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line)
            if not m:
                problem(f"{rel(path)}:{n}: not NAME=value: {line!r}")
                continue
            key, value = m.group(1), m.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            if key in env:
                problem(f"{rel(path)}:{n}: {key} is set twice")
            env[key] = value
    return env


VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class Substituter:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
    ${VAR?error}, ${VAR:+alt}, ${VAR+alt}, $VAR and $$, from env."""

    def __init__(self, env):
        self.env = env
        self.used = set()
        self.required = set()

    def string(self, s, where):
        def repl(m):
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(4)
            op, arg = m.group(2), m.group(3) or ""
            self.used.add(name)
            value = self.env.get(name)
            if op in (":?", "?"):
                self.required.add(name)
            if op == ":-":
                return value if value else self.string(arg, where)
            if op == "-":
                return value if value is not None else self.string(arg, where)
            if op == ":+":
                return self.string(arg, where) if value else ""
            if op == "+":
                return self.string(arg, where) if value is not None else ""
            if op == ":?" and not value or op == "?" and value is None:
                problem(f"{where}: ${{{name}}} is required ({arg}) and .env.example does not set it")
                return ""
            if value is None:
                problem(f"{where}: ${{{name}}} has no default and .env.example does not set it")
                return ""
            return value

        return VAR.sub(repl, s)

    def tree(self, node, where="compose.yaml"):
        if isinstance(node, dict):
            return {k: self.tree(v, f"{where}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [self.tree(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str):
            return self.string(node, where)
        return node


# --- Helpers over the compose model --------------------------------------


def environment(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v if "=" in str(item) else None
        return out
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def depends_on(svc):
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: {"condition": "service_started"} for d in deps}
    return {d: (c or {"condition": "service_started"}) for d, c in deps.items()}


def argv(value):
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value]


def healthcheck_test(svc):
    hc = svc.get("healthcheck")
    if not isinstance(hc, dict) or hc.get("disable"):
        return None
    test = hc.get("test")
    if not test:
        return None
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    if test[0] == "NONE":
        return None
    return [str(t) for t in test]


def replicas(svc):
    return int(((svc.get("deploy") or {}).get("replicas")) or svc.get("scale") or 1)


def parse_port(spec):
    """(host_ip, first, last, target) of a published port, or None when it is
    not published on a fixed host port."""
    if isinstance(spec, dict):
        published = spec.get("published")
        if published in (None, ""):
            return None
        first, _, last = str(published).partition("-")
        return spec.get("host_ip") or "0.0.0.0", int(first), int(last or first), int(spec["target"])
    s = str(spec).split("/")[0]
    parts = s.rsplit(":", 2)
    if len(parts) == 1:
        return None
    if len(parts) == 2:
        ip, host, target = "0.0.0.0", parts[0], parts[1]
    else:
        ip, host, target = parts
    if not host:
        return None
    first, _, last = host.partition("-")
    return ip or "0.0.0.0", int(first), int(last or first), int(target.split("-")[0])


def split_hostport(addr):
    m = re.match(r"^\[?([^\]]*)\]?:(\d+)$", addr or "")
    return (m.group(1), int(m.group(2))) if m else (None, None)


def is_loopback(host):
    return host == "localhost" or host == "::1" or re.match(r"^127\.\d+\.\d+\.\d+$", host or "") is not None


# --- The checks ----------------------------------------------------------


def check_compose(settings):
    env_example = read_env_file(ENV_EXAMPLE)
    with open(COMPOSE_FILE) as f:
        raw = yaml.safe_load(f)
    sub = Substituter(env_example)
    doc = sub.tree(raw)

    # The variables: those substituted, and those that secrets are made from.
    for secret in (raw.get("secrets") or {}).values():
        if isinstance(secret, dict) and isinstance(secret.get("environment"), str):
            sub.used.add(secret["environment"])
    for name in sorted(sub.used - set(env_example)):
        problem(f"compose.yaml uses ${{{name}}}, which .env.example does not document")
    for name in sorted(set(env_example) - sub.used):
        problem(f".env.example sets {name}, which compose.yaml does not use")
    for name in sorted(n for n in env_example if n.startswith("STRATA_")):
        check(name in settings, f".env.example: {name} is not a setting of internal/config/config.go")

    services = doc.get("services") or {}
    if not check(isinstance(services, dict) and services, "compose.yaml has no services"):
        return {}
    volumes = set((doc.get("volumes") or {}).keys())

    # Which services are one-shot: a service something waits to complete.
    one_shot = {d for s in services.values() for d, c in depends_on(s).items()
                if c.get("condition") == "service_completed_successfully"}

    published = []  # (service, ip, first, last)
    builds = {}     # image -> (service, build)
    for name, svc in services.items():
        where = f"service {name}"
        if not check(isinstance(svc, dict), f"{where}: not a mapping"):
            continue

        # Image and build.
        image, build = svc.get("image"), svc.get("build")
        check(image or build, f"{where}: neither image nor build")
        if build:
            if isinstance(build, str):
                build = {"context": build}
            context = os.path.normpath(os.path.join(COMPOSE_DIR, build.get("context", ".")))
            if check(os.path.isdir(context), f"{where}: build context {build.get('context')} is not a directory"):
                dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
                check(os.path.isfile(dockerfile), f"{where}: no Dockerfile at {rel(dockerfile)}")
            if image:
                prev = builds.setdefault(image, (name, build))
                check(prev[1] == build, f"{where}: builds image {image} differently from service {prev[0]}")

        # depends_on.
        for dep, cond in depends_on(svc).items():
            c = cond.get("condition", "service_started")
            if not check(dep in services, f"{where}: depends on {dep}, which is not a service"):
                continue
            check(c in ("service_started", "service_healthy", "service_completed_successfully"),
                  f"{where}: depends on {dep} with unknown condition {c}")
            if c == "service_healthy":
                check(healthcheck_test(services[dep]) is not None,
                      f"{where}: waits for {dep} to be healthy, but {dep} has no health check")
            if c == "service_completed_successfully":
                check(services[dep].get("restart", "no") in ("no", False),
                      f"{where}: waits for {dep} to complete, but {dep} restarts (restart: {services[dep].get('restart')})")

        # Health checks and restart policies (YAML 1.1 reads a bare no as
        # false; compose, as the string).
        restart = svc.get("restart", "no")
        restart = "no" if restart is False else str(restart)
        if name in one_shot:
            check(restart == "no", f"{where}: one-shot (others wait for it to complete) but restart is {restart}")
        else:
            check(healthcheck_test(svc) is not None, f"{where}: no health check")
            check(restart in ("always", "unless-stopped") or restart.startswith("on-failure"),
                  f"{where}: long-running but restart is {restart!r}")

        # Volumes.
        for v in svc.get("volumes") or []:
            source = v.get("source") if isinstance(v, dict) else str(v).split(":")[0]
            vtype = v.get("type", "volume") if isinstance(v, dict) else None
            if vtype == "volume" or (vtype is None and source and not source.startswith((".", "/", "~"))):
                check(source in volumes, f"{where}: uses volume {source}, which is not declared under volumes")

        # STRATA_ settings.
        for key in environment(svc):
            if key.startswith("STRATA_"):
                check(key in settings, f"{where}: {key} is not a setting of internal/config/config.go")

        # Published ports.
        n = replicas(svc)
        for spec in svc.get("ports") or []:
            try:
                p = parse_port(spec)
            except (ValueError, KeyError):
                problem(f"{where}: cannot read the port {spec!r}")
                continue
            if p is None:
                continue
            ip, first, last, _ = p
            check(last - first + 1 >= n,
                  f"{where}: {n} replicas cannot share the {last - first + 1} host port(s) {first}-{last}: publish a range")
            published.append((name, ip, first, last))

    for i, (a, ipa, fa, la) in enumerate(published):
        for b, ipb, fb, lb in published[i + 1:]:
            overlap = fa <= lb and fb <= la
            same_ip = ipa == ipb or "0.0.0.0" in (ipa, ipb)
            check(not (overlap and same_ip), f"services {a} and {b} both publish host port(s) {max(fa, fb)}-{min(la, lb)}")

    check_strata_services(services)
    return services


def check_strata_services(services):
    strata = {}
    for name, svc in services.items():
        entry = argv(svc.get("entrypoint"))
        cmd = argv(svc.get("command"))
        line = entry + cmd
        if not line:
            continue
        if entry[:1] == ["/bin/sh"] or entry[:1] == ["sh"]:
            words = " ".join(cmd).split()
        else:
            words = line
        if words[:1] in (["writer"], ["projector"]):
            strata[name] = (words[0], words[1] if len(words) > 1 else "", svc)
        elif any(w in ("writer", "projector") for w in words):
            strata[name] = ("shell", "", svc)

    check(strata, "no service runs the writer or the projector")
    writers = [n for n, (b, c, _) in strata.items() if b == "writer" and c == "serve"]
    projectors = [n for n, (b, c, _) in strata.items() if b == "projector" and c == "run"]
    check(len(writers) >= 2, f"two services should run writer serve (one relays, one stands by); found {writers}")
    check(sum(replicas(services[n]) for n in projectors) >= 2,
          f"two or more projectors should run (projector run, replicas counted); found {projectors}")

    # The store is migrated and the schemas registered before a writer or a
    # projector starts: the writer refuses an unmigrated store, and the
    # projector checks its projections against the registered schemas.
    setup = [n for n, (_, _, s) in strata.items()
             if re.search(r"\bwriter\s+migrate\b", " ".join(argv(s.get("command"))))
             and re.search(r"\bwriter\s+schemas\s+apply\b", " ".join(argv(s.get("command"))))]
    if check(setup, "no service runs writer migrate and writer schemas apply"):
        for n in writers + projectors:
            check(any(depends_on(services[n]).get(m, {}).get("condition") == "service_completed_successfully" for m in setup),
                  f"service {n}: does not wait for {setup[0]} (writer migrate, writer schemas apply) to complete")

    agree = {}
    for name, (binary, command, svc) in strata.items():
        where = f"service {name}"
        env = environment(svc)

        # The database is a service of the file, with the URL's credentials.
        url = env.get("STRATA_DATABASE_URL")
        if check(url, f"{where}: no STRATA_DATABASE_URL"):
            u = urlsplit(url)
            check(u.scheme in ("postgres", "postgresql"), f"{where}: STRATA_DATABASE_URL is not a postgres:// URL")
            db = services.get(u.hostname)
            if check(db is not None, f"{where}: STRATA_DATABASE_URL names host {u.hostname}, which is not a service"):
                denv = environment(db)
                if "POSTGRES_PASSWORD" in denv:
                    user = denv.get("POSTGRES_USER") or "postgres"
                    check(u.username == user, f"{where}: STRATA_DATABASE_URL's user is not {u.hostname}'s POSTGRES_USER ({user})")
                    check(u.password == denv.get("POSTGRES_PASSWORD"),
                          f"{where}: STRATA_DATABASE_URL's password is not {u.hostname}'s POSTGRES_PASSWORD")
                    check(u.path.lstrip("/") == (denv.get("POSTGRES_DB") or user),
                          f"{where}: STRATA_DATABASE_URL's database is not {u.hostname}'s POSTGRES_DB")
                    check((u.port or 5432) == 5432, f"{where}: STRATA_DATABASE_URL's port is not PostgreSQL's 5432")
                cond = depends_on(svc).get(u.hostname, {}).get("condition")
                check(cond == "service_healthy", f"{where}: does not wait for {u.hostname} to be healthy")

        # The brokers are advertised by a Kafka service of the file.
        brokers = env.get("STRATA_KAFKA_BROKERS")
        if binary == "projector" or command in ("serve", "relay"):
            if check(brokers, f"{where}: no STRATA_KAFKA_BROKERS"):
                for b in brokers.split(","):
                    host, port = split_hostport(b.strip())
                    k = services.get(host)
                    if not check(k is not None, f"{where}: broker {b} is not a service"):
                        continue
                    kenv = environment(k)
                    advertised = kenv.get("KAFKA_ADVERTISED_LISTENERS") or ""
                    check(re.search(rf"://{re.escape(host)}:{port}(,|$)", advertised) is not None,
                          f"{where}: broker {b} is not among {host}'s KAFKA_ADVERTISED_LISTENERS ({advertised})")
                    check_kafka(host, k)

        # A served API: authentication, health check and ports on its address.
        if (binary, command) in (("writer", "serve"), ("writer", "relay"), ("projector", "run")):
            addr = env.get("STRATA_HTTP_ADDR") or ("127.0.0.1:8081" if binary == "projector" else "127.0.0.1:8080")
            host, port = split_hostport(addr)
            if check(port is not None, f"{where}: STRATA_HTTP_ADDR {addr!r} is not host:port"):
                if not is_loopback(host):
                    tokens = env.get("STRATA_API_TOKENS") or ""
                    allow = (env.get("STRATA_ALLOW_UNAUTHENTICATED") or "").lower() in ("1", "t", "true")
                    check(tokens or allow, f"{where}: serves {addr} without STRATA_API_TOKENS or STRATA_ALLOW_UNAUTHENTICATED=true: it would refuse to start")
                    check_tokens(where, tokens)
                else:
                    check(not svc.get("ports"), f"{where}: publishes ports but listens on loopback {addr} only")
                test = " ".join(healthcheck_test(svc) or [])
                check(re.search(rf"https?://(127\.0\.0\.1|localhost):{port}/readyz\b", test) is not None,
                      f"{where}: the health check does not ask /readyz on port {port} (STRATA_HTTP_ADDR): {test!r}")
                for spec in svc.get("ports") or []:
                    p = parse_port(spec)
                    if p:
                        check(p[3] == port, f"{where}: publishes container port {p[3]}, but the API listens on {port}")

        # Writers and projectors agree on the store and the topics.
        if (binary, command) in (("writer", "serve"), ("writer", "relay"), ("projector", "run")):
            for key in ("STRATA_DATABASE_URL", "STRATA_DATABASE_SCHEMA", "STRATA_TOPIC_PREFIX", "STRATA_TOPIC_PARTITIONS",
                        "STRATA_KAFKA_BROKERS"):
                agree.setdefault(key, {}).setdefault(env.get(key), []).append(name)
        if binary == "writer":
            agree.setdefault("STRATA_STORE_NAME", {}).setdefault(env.get("STRATA_STORE_NAME"), []).append(name)
    for key, values in agree.items():
        check(len(values) == 1, f"the Strata services disagree on {key}: " +
              "; ".join(f"{sorted(v)}: {k!r}" for k, v in values.items()))


checked_kafka = set()


def check_kafka(name, svc):
    if name in checked_kafka:
        return
    checked_kafka.add(name)
    env = environment(svc)
    where = f"service {name}"
    if "KAFKA_PROCESS_ROLES" not in env and "KAFKA_ZOOKEEPER_CONNECT" not in env:
        return  # configured another way: nothing to check
    roles = set((env.get("KAFKA_PROCESS_ROLES") or "").split(","))
    check({"broker", "controller"} <= roles, f"{where}: KAFKA_PROCESS_ROLES should be broker,controller (one KRaft node)")
    check(env.get("CLUSTER_ID"), f"{where}: KRaft needs CLUSTER_ID")
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        check(env.get(key) == "1", f"{where}: {key} should be 1 on a single broker (the relay's transactions need it)")
    listeners = env.get("KAFKA_LISTENERS") or ""
    names = {l.split("://")[0] for l in listeners.split(",") if "://" in l}
    proto = {p.split(":")[0] for p in (env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP") or "").split(",")}
    check(names <= proto, f"{where}: listeners {sorted(names - proto)} have no security protocol")
    check((env.get("KAFKA_CONTROLLER_LISTENER_NAMES") or "") in names, f"{where}: the controller listener is not a listener")
    adv = {l.split("://")[0] for l in (env.get("KAFKA_ADVERTISED_LISTENERS") or "").split(",") if "://" in l}
    check(adv <= names, f"{where}: advertised listeners {sorted(adv - names)} are not listeners")


def check_tokens(where, tokens):
    seen = set()
    for i, entry in enumerate(t for t in tokens.split(",") if tokens):
        parts = entry.strip().split(":")
        if not check(2 <= len(parts) <= 3 and parts[0], f"{where}: STRATA_API_TOKENS entry {i + 1} is not token:role[:principal]"):
            continue
        check(parts[1] in ("reader", "writer", "admin"), f"{where}: STRATA_API_TOKENS entry {i + 1}: role {parts[1]!r} is not reader, writer or admin")
        check(len(parts[0]) >= 16, f"{where}: STRATA_API_TOKENS entry {i + 1}: a token must be at least 16 characters")
        check(parts[0] not in seen, f"{where}: STRATA_API_TOKENS entry {i + 1} repeats a token")
        seen.add(parts[0])


# --- The Dockerfile and the build context --------------------------------


def dockerfile_stages():
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    args, stages = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "ARG" and not stages:
            for a in rest.split():
                k, _, v = a.partition("=")
                args[k] = v
        elif instr == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"image": image, "name": alias, "lines": []})
        elif stages:
            stages[-1]["lines"].append((instr, rest))
    return stages


def check_dockerfile(services):
    with open(os.path.join(ROOT, "go.mod")) as f:
        m = re.search(r"^go\s+(\d+)\.(\d+)", f.read(), re.M)
    go_version = f"{m.group(1)}.{m.group(2)}" if m else None
    stages = dockerfile_stages()
    if not check(stages, f"{rel(DOCKERFILE)}: no FROM"):
        return
    golang = [s for s in stages if re.match(r"^(docker\.io/(library/)?)?golang:", s["image"])]
    if check(golang, f"{rel(DOCKERFILE)}: no stage builds FROM the official golang image"):
        tag = golang[0]["image"].split(":", 1)[1]
        check(tag == go_version or tag.startswith(go_version + ".") or tag.startswith(go_version + "-"),
              f"{rel(DOCKERFILE)}: builds with golang:{tag}, but go.mod says go {go_version}")
        lines = golang[0]["lines"]
        text = "\n".join(f"{i} {r}" for i, r in lines)
        check("CGO_ENABLED=0" in text, f"{rel(DOCKERFILE)}: the build does not set CGO_ENABLED=0 (static binaries)")
        check("-trimpath" in text, f"{rel(DOCKERFILE)}: the build does not use -trimpath")
        order = [(i, r) for i, r in lines if i in ("COPY", "RUN")]
        idx = lambda pred: next((n for n, (i, r) in enumerate(order) if pred(i, r)), None)
        mod_copy = idx(lambda i, r: i == "COPY" and "go.mod" in r and "go.sum" in r)
        download = idx(lambda i, r: i == "RUN" and "go mod download" in r)
        src_copy = idx(lambda i, r: i == "COPY" and "go.mod" not in r and "--from" not in r)
        check(None not in (mod_copy, download, src_copy) and mod_copy < download < src_copy,
              f"{rel(DOCKERFILE)}: the build should copy go.mod and go.sum, run go mod download, and only then copy the sources")
        for cmd in ("./cmd/writer", "./cmd/projector"):
            check(cmd in text, f"{rel(DOCKERFILE)}: the build does not build {cmd}")

    final = stages[-1]
    user = [r for i, r in final["lines"] if i == "USER"]
    check(user and user[-1].split(":")[0] not in ("root", "0"), f"{rel(DOCKERFILE)}: the final stage does not run as a non-root user")
    wget_checks = [n for n, s in services.items()
                   if s.get("build") and (healthcheck_test(s) or [None, ""])[1:2] == ["wget"]]
    if wget_checks:
        check(re.match(r"^(docker\.io/(library/)?)?(alpine|busybox)[:@]", final["image"]) is not None,
              f"{rel(DOCKERFILE)}: {wget_checks} health-check with wget, but the final stage ({final['image']}) may have none")


def dockerignore_patterns():
    pats = []
    with open(DOCKERIGNORE) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            p = os.path.normpath(line[1:] if neg else line).lstrip("/")
            rx, i = "", 0
            while i < len(p):
                if p.startswith("**/", i):
                    rx, i = rx + "(.*/)?", i + 3
                elif p.startswith("**", i):
                    rx, i = rx + ".*", i + 2
                elif p[i] == "*":
                    rx, i = rx + "[^/]*", i + 1
                elif p[i] == "?":
                    rx, i = rx + "[^/]", i + 1
                elif p[i] == "[" and "]" in p[i:]:
                    j = p.index("]", i)
                    rx, i = rx + p[i:j + 1], j + 1
                else:
                    rx, i = rx + re.escape(p[i]), i + 1
            pats.append((re.compile("^" + rx + "$"), neg))
    return pats


def excluded(path, pats):
    """Docker's rule: the last pattern that matches the path or one of its
    parent directories decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    out = False
    for rx, neg in pats:
        if any(rx.match(p) for p in prefixes):
            out = not neg
    return out


def check_dockerignore():
    if not check(os.path.isfile(DOCKERIGNORE), "no .dockerignore at the repository root"):
        return
    pats = dockerignore_patterns()
    try:
        out = subprocess.run(
            ["go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles \",\"}}|{{join .EmbedFiles \",\"}}{{end}}{{end}}",
             "./cmd/writer", "./cmd/projector"],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        problem(f"go list of the binaries' packages failed: {getattr(e, 'stderr', e)}")
        return
    needed = ["go.mod", "go.sum"]
    for line in out.splitlines():
        d, gofiles, embeds = line.split("|")
        d = os.path.relpath(d, ROOT)
        needed += [f"{d}/{f}" for f in (gofiles.split(",") + embeds.split(",")) if f]
    # What the binaries read at run time: the event schemas (writer schemas
    # apply, the registry's checks) and the declarative projections.
    for top, ext in (("schemas", ".avsc"), ("projections", ".sql")):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            needed += [os.path.relpath(os.path.join(dirpath, f), ROOT) for f in files if f.endswith(ext)]
    for path in needed:
        check(not excluded(path, pats), f".dockerignore leaves {path} out of the build context, and the image needs it")
    for path in (".git/HEAD", "bin/writer", ".data/x", "deploy/compose/.env"):
        check(excluded(path, pats), f".dockerignore lets {path.split('/')[0]}/... into the build context")


def main():
    for path in (COMPOSE_FILE, ENV_EXAMPLE, DOCKERFILE, CONFIG_GO):
        if not os.path.isfile(path):
            problem(f"{rel(path)} is missing")
    if problems:
        return report()
    services = check_compose(strata_settings())
    check_dockerfile(services)
    check_dockerignore()
    return report()


def report():
    for p in problems:
        print(f"check-compose: {p}", file=sys.stderr)
    if problems:
        print(f"check-compose: {len(problems)} problem(s) in deploy/compose", file=sys.stderr)
        return 1
    print(f"check-compose: static checks passed ({checks} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
