"""Drives lookoutd with docker-py, unchanged: python3 docker_py_check.py unix:///path/d.sock IMAGE

Exits non-zero with a message on the first failed check; prints "ok: <check>" lines.
"""

import sys

import docker
from docker.errors import APIError, ContainerError, NotFound


def check(name, cond, detail=""):
    if not cond:
        print(f"FAILED: {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {name}")


def main():
    url, image = sys.argv[1], sys.argv[2]
    client = docker.DockerClient(base_url=url, version="auto", timeout=60)
    api = client.api

    check("ping", client.ping() is True)
    v = client.version()
    check("version", v["ApiVersion"] == "1.47", v)
    info = client.info()
    check("info", info["NCPU"] >= 1 and info["MemTotal"] > 0, info)

    img = client.images.get(image)
    check("image get", img.id.startswith("sha256:"), img.id)
    check("image list", any(image in i.tags for i in client.images.list()), client.images.list())
    img.tag("pytag", "v1")
    check("image tag", "pytag:v1" in client.images.get("pytag:v1").tags)
    client.images.remove("pytag:v1")
    try:
        client.images.get("pytag:v1")
        check("image remove", False, "still there")
    except NotFound:
        check("image remove", True)

    # Attached run: returns stdout.
    out = client.containers.run(image, ["sh", "-c", "echo hi; echo err >&2"], remove=True)
    check("run returns output", out == b"hi\n", out)

    # Non-zero exit raises ContainerError with the code.
    try:
        client.containers.run(image, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
        check("exit 3 raises", False, "no error")
    except ContainerError as e:
        check("exit 3 raises", e.exit_status == 3, e)

    c = client.containers.run(
        image,
        ["sh", "-c", "echo one; echo two >&2; sleep 300"],
        detach=True,
        name="pyweb",
        labels={"team": "obs"},
        mem_limit="64m",
        log_config={"Type": "json-file", "Config": {"max-size": "1m"}},
    )
    c.reload()
    check("detached running", c.status == "running", c.status)
    check("ip address key", c.attrs["NetworkSettings"]["IPAddress"] == "", c.attrs["NetworkSettings"])
    check("name", c.name == "pyweb", c.name)
    listed = client.containers.list(filters={"label": "team=obs"})
    check("list by label", [x.id for x in listed] == [c.id], listed)

    import time

    for _ in range(100):
        if b"two" in c.logs():
            break
        time.sleep(0.05)
    check("logs both", c.logs() == b"one\ntwo\n", c.logs())
    check("logs stdout", c.logs(stderr=False) == b"one\n", c.logs(stderr=False))
    check("logs stderr", c.logs(stdout=False) == b"two\n", c.logs(stdout=False))
    check("logs tail", c.logs(tail=1) == b"two\n", c.logs(tail=1))
    ts = c.logs(timestamps=True).split(b"\n")[0]
    check("logs timestamps", ts.endswith(b"Z one"), ts)

    s = c.stats(stream=False)
    check("stats", s["memory_stats"]["limit"] == 64 * 1024 * 1024 and s["pids_stats"]["current"] >= 1, s)
    check("stats cpu", s["cpu_stats"]["cpu_usage"]["total_usage"] > 0, s["cpu_stats"])

    try:
        client.containers.create(image, "true", name="pyweb")
        check("name conflict", False, "created twice")
    except APIError as e:
        check("name conflict", e.status_code == 409 and "already in use" in str(e), e)

    c.stop(timeout=1)
    r = c.wait()
    check("wait after stop", r["StatusCode"] == 137, r)
    c.reload()
    check("exited", c.status == "exited", c.status)
    c.remove()
    try:
        client.containers.get("pyweb")
        check("removed", False, "still there")
    except NotFound:
        check("removed", True)

    # Following logs ends when the container exits.
    c = client.containers.run(image, ["sh", "-c", "for i in 1 2 3; do echo l$i; sleep 0.2; done"], detach=True)
    lines = b"".join(c.logs(stream=True, follow=True))
    check("follow", lines == b"l1\nl2\nl3\n", lines)
    check("wait code", c.wait()["StatusCode"] == 0)
    c.remove(force=True)

    c = client.containers.run(
        image, ["sh", "-c", "trap 'exit 5' TERM; while true; do sleep 0.1; done"], detach=True
    )
    time.sleep(0.5)
    c.kill(signal="SIGTERM")
    r = c.wait()
    check("kill TERM", r["StatusCode"] == 5, r)
    c.remove()

    print("docker-py: all checks passed")


if __name__ == "__main__":
    main()
